"""Two simulated hosts for tests: network namespaces joined by a bridge, with addresses made up for the test
(10.213.N.0/24, N from the pid) so that their traffic stays on that bridge. Each "host" also gets its own UTS
namespace (hostname) per process, so Open MPI sees two nodes. Everything is removed on exit, even on failure.

mpirun runs inside host A; Open MPI starts its daemon on host B through `--mca plm_rsh_agent AGENT`, a script that
runs the daemon's command in B's namespaces (in place of ssh). The namespaces share /dev/shm, so the shared-memory
transport must be off (btl tcp,self; UCX_TLS=tcp,self)."""
import os
import shutil
import subprocess
import tempfile

SKIP = 77


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, check=check, timeout=30)


class TwoHosts:
    def __init__(self, slots=3):
        tag = f"{os.getpid() % 100000}"
        self.bridge = f"tsbr{tag}"
        self.ns = [f"tessera{tag}a", f"tessera{tag}b"]
        self.veth = [f"tsv{tag}a", f"tsv{tag}b"]
        octet = 16 + os.getpid() % 200
        self.subnet = f"10.213.{octet}.0/24"
        self.addrs = [f"10.213.{octet}.1", f"10.213.{octet}.2"]
        self.names = ["tessera-host-a", "tessera-host-b"]
        self.slots = slots
        self.dir = tempfile.mkdtemp(prefix="tessera-netns-")
        self._made = []  # (kind, name) to remove, in creation order

    def __enter__(self):
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    def _up(self):
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", self.bridge))
        _ip("link", "set", self.bridge, "up")
        for ns, veth, addr in zip(self.ns, self.veth, self.addrs):
            _ip("netns", "add", ns)
            self._made.append(("netns", ns))
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._made.append(("link", veth))
            _ip("link", "set", veth, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        self.hostfile = os.path.join(self.dir, "hostfile")
        with open(self.hostfile, "w") as f:
            for addr in self.addrs:
                f.write(f"{addr} slots={self.slots}\n")
        # The rsh agent: Open MPI calls it as `AGENT HOST COMMAND...` to start its daemon on HOST.
        self.agent = os.path.join(self.dir, "netns-rsh-agent.sh")
        cases = "\n".join(f'  {a}) ns={n}; name={h} ;;' for a, n, h in zip(self.addrs, self.ns, self.names))
        with open(self.agent, "w") as f:
            f.write(f"""#!/bin/sh
# Written by tests/e2e/netns_hosts.py: runs an Open MPI daemon "on" a simulated host (its network namespace).
host="$1"; shift
case "$host" in
{cases}
  *) echo "netns-rsh-agent: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" unshare --uts sh -c "hostname $name; $*"
""")
        os.chmod(self.agent, 0o755)

    def reach_from_here(self):
        """Gives the bridge an address of the test's subnet, so that this process (outside both hosts) can talk to
        them, as a client on the same network would. Returns that address."""
        here = self.addrs[0].rsplit(".", 1)[0] + ".254"
        _ip("addr", "add", here + "/24", "dev", self.bridge)
        return here

    def cut_link(self, host):
        """Cuts host `host` (0: A, 1: B) off the network, as a failed switch port or cable would: its veth goes down
        on the bridge side, so nothing passes either way and no connection is told that it closed."""
        _ip("link", "set", self.veth[host], "down")

    def on_host_a(self, argv):
        """argv run as a process of host A (its network and hostname)."""
        return ["ip", "netns", "exec", self.ns[0], "unshare", "--uts", "sh", "-c",
                f'hostname {self.names[0]}; exec "$@"', "sh"] + list(argv)

    def mpi_flags(self):
        """mpirun flags that make Open MPI use the two hosts and only the test's subnet."""
        return ["--mca", "plm_rsh_agent", self.agent, "--mca", "btl_tcp_if_include", self.subnet,
                "--mca", "oob_tcp_if_include", self.subnet,
                # This machine has fewer cores than the ranks: polling ranks must yield or they starve each other.
                "--mca", "mpi_yield_when_idle", "1"]

    def down(self):
        for kind, name in reversed(self._made):
            if kind == "netns":
                _ip("netns", "delete", name, check=False)
            else:
                _ip("link", "delete", name, check=False)
        self._made.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


def missing():
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "unshare", "mpirun"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        return "ip netns does not work here: " + probe.stderr.strip()
    return None
