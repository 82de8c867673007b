"""Running a multi-process command (mpirun and its ranks) so that a timeout ends all of it, not only mpirun."""
import os
import signal
import subprocess


def run_group(argv, timeout, **kw):
    """subprocess.run in a session of its own: on timeout the whole group (mpirun, its ranks, the remote daemon
    started through the agent) is killed, not only mpirun."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kw)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(argv, timeout, out, err)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)

