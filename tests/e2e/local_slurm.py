"""A real one-node Slurm cluster on this machine for tests: munged, slurmctld and slurmd from Debian's packages,
every file (key, sockets, state, logs) in a private temporary folder, on free ports, stopped on exit even when the
test fails. Settings that work as root without systemd or cgroups (tried here):
proctrack/linuxproc, task/none, SlurmdParameters=config_overrides (the node declares more CPUs than it has),
EnforcePartLimits=ALL (a request that cannot fit fails at once instead of pending forever), MpiDefault=pmix."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_tools():
    return [t for t in ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol")
            if shutil.which(t) is None and not os.path.exists("/usr/sbin/" + t)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tool(name):
    return shutil.which(name) or "/usr/sbin/" + name


class LocalSlurm:
    """Context manager: `with LocalSlurm(cpus=8) as slurm: job = slurm.sbatch([...])`."""

    def __init__(self, cpus=8):
        self.cpus = cpus
        self.dir = tempfile.mkdtemp(prefix="tessera-slurm-")
        self.pids = {}
        self.node = socket.gethostname().split(".")[0]

    # --- bring-up -------------------------------------------------------------------------------------
    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _path(self, *parts):
        return os.path.join(self.dir, *parts)

    def _start(self):
        if os.geteuid() != 0:
            raise RuntimeError("LocalSlurm needs root (slurmd runs jobs as their user)")
        os.chmod(self.dir, 0o711)  # munged refuses a socket folder others can write to
        os.makedirs(self._path("munge"), mode=0o711)
        os.makedirs(self._path("state"))
        os.makedirs(self._path("spool"))
        key = self._path("munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = self._path("munge", "socket")
        subprocess.run([_tool("munged"), "--socket=" + self.munge_socket, "--key-file=" + key,
                        "--pid-file=" + self._path("munge", "munged.pid"), "--log-file=" + self._path("munged.log"),
                        "--seed-file=" + self._path("munge", "seed")], check=True, timeout=30)
        self.pids["munged"] = self._read_pid(self._path("munge", "munged.pid"))
        self.conf = self._path("slurm.conf")
        with open(self.conf, "w") as f:
            f.write(self._slurm_conf())
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        for key_ in [k for k in self.env if k.startswith("SLURM_") and k != "SLURM_CONF"]:
            del self.env[key_]  # a test run inside a real allocation must not leak it into this one
        subprocess.run([_tool("slurmctld"), "-f", self.conf], check=True, timeout=30, env=self.env)
        self.pids["slurmctld"] = self._read_pid(self._path("slurmctld.pid"))
        subprocess.run([_tool("slurmd"), "-f", self.conf], check=True, timeout=30, env=self.env)
        self.pids["slurmd"] = self._read_pid(self._path("slurmd.pid"))
        deadline = time.time() + 30
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env,
                                 timeout=10).stdout.strip()
            if out in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.2)
        raise RuntimeError("slurmd did not register with slurmctld in 30 s; logs:\n" + self.logs())

    def _slurm_conf(self):
        d = self.dir
        return f"""ClusterName=tessera-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
MpiDefault=pmix
SlurmdParameters=config_overrides
EnforcePartLimits=ALL
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
JobCompType=jobcomp/filetxt
JobCompLoc={d}/jobcomp.txt
MinJobAge=3600
KillWait=5
ReturnToService=2
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN
PartitionName=test Nodes={self.node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""

    @staticmethod
    def _read_pid(path):
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with open(path) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("no pid file " + path)

    def stop(self):
        """Cancels the jobs, stops every daemon this object started (by its pid), then ends any process still
        carrying this cluster's SLURM_CONF in its environment (a job step slurmd left behind), and removes the
        folder."""
        if "slurmctld" in self.pids:
            try:
                jobs = self.run(["squeue", "-h", "-o", "%i"], timeout=10).stdout.split()
                for job in jobs:
                    self.run(["scancel", job], timeout=10)
                deadline = time.time() + 20
                while jobs and time.time() < deadline:
                    jobs = self.run(["squeue", "-h", "-o", "%i"], timeout=10).stdout.split()
                    time.sleep(0.2)
            except (OSError, subprocess.SubprocessError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.time() + 10
            while time.time() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._end_leftovers()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _end_leftovers(self):
        if not getattr(self, "conf", None):
            return
        marker = ("SLURM_CONF=" + self.conf).encode()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = []
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == os.getpid():
                    continue
                try:
                    with open(f"/proc/{entry}/environ", "rb") as f:
                        if marker in f.read().split(b"\0"):
                            left.append(int(entry))
                except OSError:
                    continue
            for pid in left:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if not left:
                return
            time.sleep(1)

    def logs(self):
        out = []
        for name in ("slurmctld.log", "slurmd.log", "munged.log"):
            try:
                with open(self._path(name)) as f:
                    out.append(f"--- {name} (last lines)\n" + "".join(f.readlines()[-30:]))
            except OSError:
                pass
        return "\n".join(out)

    # --- jobs ------------------------------------------------------------------------------------------
    def run(self, args, timeout=60, **kw):
        return subprocess.run(args, capture_output=True, text=True, env=kw.pop("env", self.env), timeout=timeout,
                              **kw)

    def sbatch(self, args, cwd, env=None):
        """Submits; returns the job id."""
        out = self.run(["sbatch", "--parsable"] + args, cwd=cwd, env=env or self.env)
        if out.returncode != 0:
            raise RuntimeError(f"sbatch failed ({out.returncode}): {out.stderr}")
        return int(out.stdout.strip().split(";")[0])

    def job_field(self, job, field):
        out = self.run(["scontrol", "show", "job", str(job)]).stdout
        m = re.search(r"\b" + field + r"=(\S+)", out)
        return m.group(1) if m else None

    def wait_job(self, job, timeout):
        """Polls until the job leaves the queue (faster than sbatch --wait); returns (JobState, ExitCode)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.job_field(job, "JobState")
            if state not in (None, "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED"):
                return state, self.job_field(job, "ExitCode")
            time.sleep(0.2)
        self.run(["scancel", str(job)])
        raise TimeoutError(f"job {job} did not end in {timeout} s (state {self.job_field(job, 'JobState')})\n"
                           + self.logs())

    def wait_running(self, job, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.job_field(job, "JobState")
            if state == "RUNNING":
                return
            if state not in ("PENDING", "CONFIGURING"):
                raise RuntimeError(f"job {job} ended ({state}) before it ran")
            time.sleep(0.1)
        raise TimeoutError(f"job {job} did not start in {timeout} s")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A daemon we started and that exited is our zombie only when it is our child; these daemonize, so it is not.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    with LocalSlurm() as s:
        print(s.run(["sinfo"]).stdout)
    sys.exit(0)
