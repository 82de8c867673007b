"""A tp=3 pp=2 generate split across two simulated hosts (network namespaces on a bridge, tests/e2e/netns_hosts.py)
gives the same token ids as the same job on one host. Ranks 0-2 (pipeline stage 0) run on host A, ranks 3-5
(stage 1) on host B, so every activation between stages and every token back crosses the bridge.
  tcp: Open MPI's ob1 over the TCP BTL (btl tcp,self; shared memory off).
  ucx: pml ucx over UCX's TCP transport (UCX_TLS=tcp,self).
Launched with the project's cluster/mpirun-hostfile.sh. Usage: two_hosts_test.py tcp|ucx TESSERA_BIN MODEL SOURCE
Exits 77 (CTest: Skipped) without root, ip netns or the model."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_hosts import SKIP, TwoHosts, missing  # noqa: E402
from process_group import run_group  # noqa: E402

TRANSPORT_FLAGS = {
    "tcp": ["--mca", "pml", "ob1", "--mca", "btl", "tcp,self"],
    "ucx": ["--mca", "pml", "ucx", "--mca", "pml_ucx_tls", "any", "--mca", "pml_ucx_devices", "any",
            "--mca", "btl", "self", "-x", "UCX_TLS=tcp,self"],
}


def generate_args(model):
    return ["generate", "--model", model, "--tp", "3", "--pp", "2", "--prompt", "The three primary colors are",
            "--max-tokens", "16", "--ignore-eos", "--show-ids"]


def ids(output):
    m = re.findall(r"^ids: (.*)$", output, re.M)
    return m[-1].strip() if m else None


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    mode, binary, model, source = sys.argv[1:]
    binary = os.path.abspath(binary)
    if mode not in TRANSPORT_FLAGS:
        print("mode must be tcp or ucx")
        return 2
    why = missing()
    if why:
        print("SKIP: " + why)
        return SKIP
    if not os.path.isfile(model):
        print(f"SKIP: default model not found at {model}")
        return SKIP

    single = run_group(["bash", os.path.join(source, "cluster", "mpirun-local.sh"), "6"] + generate_args(model),
                       timeout=300, env=dict(os.environ, TESSERA_BIN=binary))
    reference = ids(single.stdout)
    if single.returncode != 0 or not reference:
        print(f"FAIL: single-host run failed ({single.returncode}):\n{single.stdout}\n{single.stderr}")
        return 1
    print("single host ids:", reference)

    with TwoHosts(slots=3) as hosts:
        env = dict(os.environ, TESSERA_BIN=binary,
                   TESSERA_MPIRUN_ARGS=" ".join(hosts.mpi_flags() + TRANSPORT_FLAGS[mode] + ["--display-map"]))
        argv = hosts.on_host_a(["bash", os.path.join(source, "cluster", "mpirun-hostfile.sh"), hosts.hostfile, "6"]
                               + generate_args(model))
        try:
            run = run_group(argv, timeout=300, env=env)
        except subprocess.TimeoutExpired as e:
            print(f"FAIL: the two-host run did not end in 300 s:\n{e.stdout}\n{e.stderr}")
            return 1
        print(run.stdout)
        print(run.stderr, file=sys.stderr)
        if run.returncode != 0:
            print(f"FAIL: the two-host run ({mode}) exited {run.returncode}")
            return 1
        # Where the ranks ran, from Open MPI's own map (--display-map): three on each host.
        for addr, name in zip(hosts.addrs, hosts.names):
            # mpirun names its own host by hostname, the other by its hostfile address.
            if not re.search(r"Data for node: (" + re.escape(addr) + "|" + re.escape(name) + r")\s+Num slots: \d+\s+Max slots: \d+\s+Num procs: 3",
                             run.stdout):
                print(f"FAIL: Open MPI's map does not show 3 ranks on host {addr}")
                return 1
        two = ids(run.stdout)
        if two != reference:
            print(f"FAIL: two hosts ({mode}) gave ids {two!r}, one host {reference!r}")
            return 1
        # Again with the hidden states crossing the bridge as 1/tp row slices that stage 1 all-gathers (what
        # --pp-transfer auto picks between real hosts; these namespaces share one host name, so it is forced here).
        sliced = run_group(hosts.on_host_a(["bash", os.path.join(source, "cluster", "mpirun-hostfile.sh"),
                                            hosts.hostfile, "6"] + generate_args(model) + ["--pp-transfer", "sliced"]),
                           timeout=300, env=env)
        if sliced.returncode != 0 or ids(sliced.stdout) != reference:
            print(f"FAIL: two hosts ({mode}), sliced transfers: exit {sliced.returncode}, ids {ids(sliced.stdout)!r}, "
                  f"one host {reference!r}\n{sliced.stderr[-2000:]}")
            return 1
    print(f"PASS: two hosts over {mode} give the single-host ids, with full and with sliced stage transfers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
