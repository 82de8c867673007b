#!/usr/bin/env python3
"""A cut link between two simulated hosts under a serving job (tests/e2e/netns_hosts.py): `tessera serve` at tp=3 pp=2
with ranks 0-2 (stage 0, and the HTTP server) on host A and ranks 3-5 on host B, requests in flight; then host B's
link goes down, so that nothing passes and no connection is told that it closed (the case that leaves MPI jobs
hanging forever). Within the target (10 s) every rank on both hosts must be gone, every client must get an explicit
error, /health must stop saying 200, one message must name the ranks that stopped answering, and mpirun must exit
non-zero. Prints the measured time (docs/RELIABILITY.md).

Usage: serve_link_cut_test.py TESSERA MODEL SOURCE        Exits 77 (CTest: Skipped) without root or ip netns.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from netns_hosts import SKIP, TwoHosts, missing  # noqa: E402
from test_data import missing_file_exit_code  # noqa: E402
from serve_harness import Checks, serve_pids  # noqa: E402
from fault_clients import HealthPoller, InFlightRequest, alive, wait_gone  # noqa: E402

TARGET_SECONDS = 10.0
PORT = 8123


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    binary, model, source = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
    why = missing()
    if why:
        print("SKIP: " + why)
        return SKIP
    code = missing_file_exit_code(model)
    if code is not None:
        return code
    c = Checks()
    with TwoHosts(slots=3) as hosts:
        hosts.reach_from_here()
        server_host = hosts.addrs[0]
        flags = hosts.mpi_flags() + ["--mca", "pml", "ob1", "--mca", "btl", "tcp,self"]
        env = dict(os.environ, TESSERA_BIN=binary, TESSERA_MPIRUN_ARGS=" ".join(flags))
        argv = hosts.on_host_a(["bash", os.path.join(source, "cluster", "mpirun-hostfile.sh"), hosts.hostfile, "6",
                                "serve", "--model", model, "--tp", "3", "--pp", "2", "--host", server_host,
                                "--port", str(PORT)])
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)
        lines = []
        ready = threading.Event()

        def read():
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("tessera: serving "):
                    ready.set()
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not c.check(ready.wait(timeout=240), "the two-host server is ready", "".join(lines)[-3000:]):
                return c.finish()
            pids = serve_pids(PORT)
            c.check(len(pids) == 6, "six ranks run", pids)
            poller = HealthPoller(server_host, PORT)
            poller.start()
            clients = [InFlightRequest(server_host, PORT, stream=(i % 2 == 0)) for i in range(4)]
            for client in clients:
                client.start()
            for client in clients:
                client.first_token.wait(timeout=120)
            time.sleep(0.5)
            cut_at = time.time()
            hosts.cut_link(1)
            gone_after = wait_gone(pids, timeout=60)
            try:
                code = proc.wait(timeout=30)
                mpirun_after = time.time() - cut_at
            except subprocess.TimeoutExpired:
                code, mpirun_after = None, None
            for client in clients:
                client.join(timeout=30)
            poller.stop()
            output = "".join(lines)
            c.check(gone_after is not None and gone_after <= TARGET_SECONDS,
                    f"every rank on both hosts is gone within {TARGET_SECONDS:.0f} s of the cut",
                    gone_after if gone_after is not None else "some still live after 60 s")
            if gone_after is not None:
                print(f"measured link-cut: every rank gone {gone_after:.2f} s after the cut; mpirun exited "
                      f"{'after %.2f s' % mpirun_after if mpirun_after else 'not within 30 s more'}")
            c.check(code not in (None, 0), "mpirun exits non-zero", code)
            outcomes = [(cl.stream, cl.outcome, cl.detail) for cl in clients]
            c.check(all(o and (o == "error-event" or o.startswith("http-error")) for _, o, _ in outcomes),
                    "every in-flight client got an explicit error", outcomes)
            # Either the leader's watchdog ends the job (peer timeout), or mpirun, having lost host B's daemon
            # (cluster/mpirun-hostfile.sh's keepalive), stops the leader first; its last words name the same ranks.
            errors = [line for line in output.splitlines()
                      if line.startswith("tessera: error") or line.startswith("tessera: signal")]
            print("\n".join(errors))
            c.check(len(errors) == 1 and re.search(r"rank [345] .*(stopped answering|on host tessera-host-b: )",
                                                   errors[0]) is not None,
                    "one message names the ranks that stopped answering", errors)
            first_bad, status = poller.first_unhealthy(cut_at)
            c.check(first_bad is not None and not poller.healthy_after(first_bad)
                    and any(s == 503 for at, s in poller.samples if at > cut_at),
                    "/health answers 503 once the cut is known, never 200 again", status)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            for pid in serve_pids(PORT):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            # The Open MPI daemon of host B was started through the agent outside mpirun's session.
            subprocess.run(["pkill", "-9", "-f", hosts.agent], capture_output=True)
            subprocess.run(["pkill", "-9", "-f", "orted.*" + hosts.addrs[1]], capture_output=True)
            reader.join(timeout=5)
            if c.failures:
                print("--- server output ---\n" + "".join(lines)[-4000:])
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
