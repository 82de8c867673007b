#!/usr/bin/env python3
"""Run-time rank failure on a real `tessera serve` under mpirun (tp=3: every step runs all-reduces across the three
ranks, so a failed rank leaves the others blocked inside a collective), with streaming and non-streaming requests
in flight. Each fault, one server each:
  kill9-worker     SIGKILL of rank 2
  sigstop-worker   SIGSTOP of rank 1 (the process lives, answers nothing)
  leader-throws    an exception on the leader inside a step (TESSERA_TEST_FAULT, runtime/engine/fault_injection.h)
  follower-throws  an exception on rank 2 inside a step
  follower-hangs   rank 1's engine thread hangs inside a step while its process lives (the step timeout)
  sigstop-loading  SIGSTOP of rank 2 while the model loads (/health says 503), before anything is served
Each must: end every rank within the target (10 s from the fault), give every in-flight client an explicit error
(an error event then [DONE] in a stream, an HTTP error otherwise), turn /health away from 200 once known, print one
message naming the failed rank, and exit non-zero. Prints the measured time per fault (docs/RELIABILITY.md).

Usage: serve_faults_test.py TESSERA MODEL [FAULT ...]
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_data import missing_file_exit_code  # noqa: E402
from serve_harness import Checks, Server, free_port, mpirun, rank_of, serve_pids  # noqa: E402
from fault_clients import HealthPoller, InFlightRequest, wait_gone  # noqa: E402

TARGET_SECONDS = 10.0
# (name, fault environment, signal to a rank (rank, signal) or None, server flags, what the message must say)
FAULTS = {
    "kill9-worker": (None, (2, signal.SIGKILL), [], r"rank 2 .*went away"),
    "sigstop-worker": (None, (1, signal.SIGSTOP), [], r"rank 1 .*stopped answering"),
    "leader-throws": ("throw:0:12", None, [], r"rank 0 .*failed: executing step \d+ .*injected fault"),
    "follower-throws": ("throw:2:12", None, [], r"rank 2 .*failed: executing step \d+ .*injected fault"),
    "follower-hangs": ("hang:1:12", None, ["--step-timeout", "4"], r"step \d+ has not finished .*rank 1"),
}


def run_fault(c, binary, model, name):
    fault_env, fault_signal, flags, message_pattern = FAULTS[name]
    env = {"TESSERA_TEST_FAULT": fault_env} if fault_env else {}
    print(f"--- {name}")
    with Server(binary, model, np=3, tp=3, extra=flags, env=env) as server:
        ranks = None
        for _ in range(50):
            ranks = rank_pids_of_port(server.port, 3)
            if ranks:
                break
            time.sleep(0.1)
        if not c.check(ranks is not None, f"{name}: found the 3 ranks' processes"):
            return
        poller = HealthPoller("127.0.0.1", server.port)
        poller.start()
        # An injected fault strikes at the 12th step with work, which on a fast machine comes before the first
        # tokens and the half second below are over: its instant is only known to lie after the clients start. So
        # the times of injected faults count from then (an upper bound of the time to the end), and the /health
        # checks look at every answer after it.
        clients_started = time.time()
        clients = [InFlightRequest("127.0.0.1", server.port, stream=(i % 2 == 0)) for i in range(4)]
        for client in clients:
            client.start()
        for client in clients:
            client.first_token.wait(timeout=120)
        time.sleep(0.5)  # every request admitted and decoding
        fault_at = time.time() if fault_signal else clients_started
        if fault_signal:
            rank, sig = fault_signal
            os.kill(ranks[rank], sig)
        waited_from = time.time()
        gone_after = wait_gone(list(ranks.values()), timeout=60)
        if gone_after is not None:
            gone_after += waited_from - fault_at
        try:
            code = server.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            code = None
        for client in clients:
            client.join(timeout=30)
        poller.stop()
        if fault_signal and fault_signal[1] == signal.SIGSTOP:
            try:
                os.kill(ranks[fault_signal[0]], signal.SIGCONT)
            except ProcessLookupError:
                pass
        output = server.output()
        server.kill()
        c.check(gone_after is not None and gone_after <= TARGET_SECONDS,
                f"{name}: every rank is gone within {TARGET_SECONDS:.0f} s of the fault",
                f"{gone_after if gone_after is not None else 'never (60 s)'}")
        since = "the fault" if fault_signal else "the clients started (the injected fault is between)"
        print(f"measured {name}: every rank gone {gone_after:.2f} s after {since}" if gone_after else "")
        c.check(code not in (None, 0), f"{name}: mpirun exits non-zero", code)
        outcomes = [(cl.stream, cl.outcome, cl.detail) for cl in clients]
        c.check(all(o and (o == "error-event" or o.startswith("http-error")) for _, o, _ in outcomes),
                f"{name}: every in-flight client got an explicit error", outcomes)
        errors = [line for line in output.splitlines() if line.startswith("tessera: error")]
        print("\n".join(errors))
        c.check(len(errors) == 1 and re.search(message_pattern, errors[0]) is not None,
                f"{name}: one message names the failed rank", errors)
        # /health: never 200 again once the job knows (the leader marks itself failed before it ends anything).
        first_bad, status = poller.first_unhealthy(fault_at)
        c.check(first_bad is not None and not poller.healthy_after(first_bad),
                f"{name}: /health turns away from 200 and stays so", (status, first_bad and first_bad - fault_at))
        if name != "kill9-worker":  # after a SIGKILL mpirun may end the leader before it can answer at all
            c.check(any(s == 503 for at, s in poller.samples if at > fault_at), f"{name}: /health answered 503")


def sigstop_while_loading(c, binary, model):
    """The load is watched too: the watchdog starts before the replica is built."""
    name = "sigstop-loading"
    print(f"--- {name}")
    port = free_port()
    cmd = mpirun(3) + [binary, "serve", "--model", model, "--tp", "3", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        poller = HealthPoller("127.0.0.1", port)
        poller.start()
        deadline = time.time() + 60
        while time.time() < deadline and not any(s == 503 for _, s in poller.samples):
            time.sleep(0.02)
        ranks = None
        while time.time() < deadline and not ranks:
            ranks = rank_pids_of_port(port, 3)
        if not c.check(ranks is not None, f"{name}: the server is loading (503) and its 3 ranks run"):
            return
        time.sleep(0.3)  # the watchdogs connect right after the listening phase
        fault_at = time.time()
        os.kill(ranks[2], signal.SIGSTOP)
        gone_after = wait_gone(list(ranks.values()), timeout=60)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            out = ""
        poller.stop()
        c.check(gone_after is not None and gone_after <= TARGET_SECONDS,
                f"{name}: every rank is gone within {TARGET_SECONDS:.0f} s of the fault", gone_after)
        if gone_after is not None:
            print(f"measured {name}: every rank gone {gone_after:.2f} s after the fault")
        c.check(proc.returncode not in (None, 0), f"{name}: mpirun exits non-zero", proc.returncode)
        errors = [line for line in out.splitlines() if line.startswith("tessera: error")]
        print("\n".join(errors))
        c.check(len(errors) == 1 and re.search(r"rank 2 .*stopped answering", errors[0]) is not None,
                f"{name}: one message names the failed rank", errors)
        c.check(not poller.healthy_after(fault_at), f"{name}: /health never said 200")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def rank_pids_of_port(port, np):
    """World rank -> pid of the job on `port`, once all `np` ranks run."""
    by_rank = {rank_of(pid): pid for pid in serve_pids(port)}
    by_rank.pop(None, None)
    return by_rank if len(by_rank) == np else None


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    binary, model = sys.argv[1], sys.argv[2]
    if not os.path.exists(model):
        return missing_file_exit_code(model)
    names = sys.argv[3:] or list(FAULTS) + ["sigstop-loading"]
    c = Checks()
    for name in names:
        if name == "sigstop-loading":
            sigstop_while_loading(c, binary, model)
        else:
            run_fault(c, binary, model, name)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
