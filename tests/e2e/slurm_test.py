"""Real Slurm (munged + slurmctld + slurmd from Debian's packages, on this machine) running the project's batch
scripts on the default model. Modes, one CTest test each:
  sbatch  cluster/slurm/single-node.sbatch (mpirun inside the allocation): the job's output holds the text that
          the same generate prints outside Slurm, where rank 0 runs and the command; state COMPLETED, exit 0; the
          same for multi-node-mpirun.sbatch (on this one node). Then a
          drain: USR1 sent to the batch shell (as `--signal=B:USR1@60` does) is forwarded to the ranks.
  srun    cluster/slurm/multi-node-srun.sbatch (`srun --mpi=pmix`): same text, COMPLETED; then a `tessera serve` job is
          cancelled (SIGTERM to every task, SIGKILL after KillWait): its in-flight stream completes, new requests get
          503, the server drains and stops within KillWait; then one rank of a running job is killed: FAILED.
  failed  both scripts with a model file that does not exist: every rank fails, the job is FAILED with exit 1.
Usage: slurm_test.py MODE TESSERA_BIN MODEL SOURCE_DIR. Exits 77 (CTest: Skipped) without Slurm's packages or root.
"""
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_slurm import SKIP, LocalSlurm, missing_tools  # noqa: E402
from process_group import run_group  # noqa: E402

PROMPT = "What is the capital of France? Answer in one sentence."
TOKENS = 24
RANKS = 3  # tp=3: SmolLM2's 9 heads / 3 KV heads split evenly


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def generate_args(model, tokens=TOKENS, extra=()):
    return ["generate", "--model", model, "--tp", str(RANKS), "--chat", "--prompt", PROMPT,
            "--max-tokens", str(tokens)] + list(extra)


def reference_text(binary, model, source):
    """The answer of the same command outside Slurm (mpirun on this machine)."""
    out = run_group(["bash", os.path.join(source, "cluster", "mpirun-local.sh"), str(RANKS)] + generate_args(model),
                    timeout=300, env=dict(os.environ, TESSERA_BIN=binary))
    if out.returncode != 0:
        fail(f"reference run failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    m = re.search(r"--- prompt: .*?---\n(.*?)\n--- \d+ tokens", out.stdout, re.S)
    if not m or not m.group(1).strip():
        fail("no generated text in the reference run:\n" + out.stdout)
    return m.group(1).strip()


def submit(slurm, script, args, workdir, name, sbatch_flags=()):
    out_file = os.path.join(workdir, name + ".out")
    job = slurm.sbatch(["--output", out_file, "--ntasks", str(RANKS)] + list(sbatch_flags) + [script] + args,
                       cwd=workdir, env=slurm.job_env)
    return job, out_file


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def check_completed(slurm, script, launcher, binary, model, source, workdir, name, sbatch_flags=()):
    expected = reference_text(binary, model, source)
    job, out_file = submit(slurm, script, generate_args(model), workdir, name, sbatch_flags)
    state, code = slurm.wait_job(job, timeout=300)
    output = read(out_file)
    print(f"--- job {job} ({os.path.basename(script)}): {state} {code}\n{output}")
    if state != "COMPLETED" or code != "0:0":
        fail(f"job {job} ended {state} exit {code}, expected COMPLETED 0:0\n" + slurm.logs())
    if expected not in output:
        fail(f"the job's output does not hold the reference text {expected!r}")
    if f"tessera: rank 0 runs on {slurm.node}" not in output:
        fail("the job's output does not say where rank 0 runs")
    if not re.search(r"tessera: command: " + re.escape(launcher) + " .*" + re.escape(binary) + " generate", output):
        fail(f"the job's output does not print the command run ({launcher} ... generate)")
    print(f"ok: {os.path.basename(script)} COMPLETED with the reference text {expected!r}")


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    fail("timed out waiting for " + what)


def long_job(slurm, script, binary, model, workdir, name, sbatch_flags=()):
    """A generation long enough (thousands of tokens past EOS) to be interrupted while it runs."""
    args = generate_args(model, tokens=3500, extra=["--ignore-eos"])
    job, out_file = submit(slurm, script, args, workdir, name, sbatch_flags)
    slurm.wait_running(job, timeout=60)
    wait_for(lambda: "--- prompt:" in read(out_file), 120, "the long job to start generating")
    return job, out_file


def rank_pids(slurm, job, binary):
    out = slurm.run(["scontrol", "listpids", str(job)]).stdout
    pids = []
    for line in out.splitlines()[1:]:
        fields = line.split()
        if not fields or not fields[0].isdigit():
            continue
        try:
            if os.path.realpath(f"/proc/{fields[0]}/exe") == os.path.realpath(binary):
                pids.append(int(fields[0]))
        except OSError:
            pass
    return pids


def mode_sbatch(slurm, binary, model, source, workdir):
    script = os.path.join(source, "cluster", "slurm", "single-node.sbatch")
    check_completed(slurm, script, "mpirun", binary, model, source, workdir, "single")
    # The multi-node mpirun script is the same launch in a bigger allocation: here one node without GPUs.
    multi = os.path.join(source, "cluster", "slurm", "multi-node-mpirun.sbatch")
    check_completed(slurm, multi, "mpirun", binary, model, source, workdir, "multi-mpirun",
                    ["--nodes", "1", "--gpus-per-node", "0"])
    # Drain: the signal Slurm sends before the time limit (--signal=B:USR1@60) goes to the batch shell only;
    # the script must pass it on. A generate rank has no drain handler, so USR1 ends it: the job then fails.
    job, out_file = long_job(slurm, script, binary, model, workdir, "drain")
    r = slurm.run(["scancel", "--batch", "--signal=USR1", str(job)])
    if r.returncode != 0:
        fail("scancel --batch --signal=USR1 failed: " + r.stderr)
    state, code = slurm.wait_job(job, timeout=120)
    output = read(out_file)
    print(f"--- drained job {job}: {state} {code}\n{output[-1500:]}")
    if "received SIGUSR1: forwarding it to the ranks" not in output:
        fail("the batch script did not report forwarding USR1")
    if "--- 3500 tokens" in output:
        fail("the ranks finished all 3500 tokens: USR1 did not reach them")
    if state != "FAILED":
        fail(f"a job whose ranks were ended by the forwarded USR1 shows {state}, expected FAILED")
    print("ok: USR1 to the batch shell reached the ranks; the job shows FAILED")


def mode_srun(slurm, binary, model, source, workdir):
    script = os.path.join(source, "cluster", "slurm", "multi-node-srun.sbatch")
    # This machine is one node without GPUs: override the script's node and GPU requests from the command line.
    flags = ["--nodes", "1", "--gpus-per-node", "0"]
    check_completed(slurm, script, "srun --mpi=pmix", binary, model, source, workdir, "srun", flags)
    # `tessera doctor` started by srun sees the Slurm step and PMIx.
    doctor = slurm.run(["timeout", "60", "srun", "--mpi=pmix", "-n", "1", binary, "doctor"], timeout=90)
    print(doctor.stdout)
    launcher_line = next((l for l in doctor.stdout.splitlines() if "] launcher" in l), "")
    if "Slurm job" not in launcher_line or "srun step" not in launcher_line or "PMIx" not in launcher_line:
        fail("tessera doctor under srun --mpi=pmix does not report Slurm and PMIx: " + launcher_line)
    print("ok: tessera doctor under srun reports: " + launcher_line)
    srun_serve_drain(slurm, script, binary, model, workdir, flags)
    job, out_file = long_job(slurm, script, binary, model, workdir, "srun-kill", flags)
    wait_for(lambda: len(rank_pids(slurm, job, binary)) >= RANKS, 30, "the ranks' pids")
    pids = rank_pids(slurm, job, binary)
    victim = pids[-1]
    print(f"killing rank process {victim} of job {job} (ranks {pids})")
    os.kill(victim, 9)
    state, code = slurm.wait_job(job, timeout=120)
    print(f"--- job {job}: {state} {code}\n{read(out_file)[-1500:]}")
    if state != "FAILED":
        fail(f"a job with a killed rank shows {state}, expected FAILED")
    print("ok: a killed rank makes the srun job FAILED")


def srun_serve_drain(slurm, script, binary, model, workdir, flags):
    """scancel of a serving srun job drains it: srun's SIGTERM (unlike mpirun's) leaves KillWait for in-flight work."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve"))
    from fault_clients import InFlightRequest  # noqa: E402
    from serve_harness import free_port  # noqa: E402
    port = free_port()
    job, out_file = submit(slurm, script, ["serve", "--model", model, "--tp", str(RANKS), "--port", str(port),
                                           "--drain-timeout", "4"], workdir, "srun-serve", flags)
    slurm.wait_running(job, timeout=60)
    wait_for(lambda: "tessera: serving " in read(out_file), 180, "the server to be ready")
    stream = InFlightRequest("127.0.0.1", port, stream=True, max_tokens=40)
    stream.start()
    stream.first_token.wait(timeout=60)
    cancelled_at = time.time()
    r = slurm.run(["scancel", str(job)])
    if r.returncode != 0:
        fail("scancel failed: " + r.stderr)
    wait_for(lambda: "draining" in read(out_file), 10, "the leader to start draining")
    late = InFlightRequest("127.0.0.1", port, stream=False, max_tokens=4)
    late.run()
    stream.join(timeout=30)
    state, code = slurm.wait_job(job, timeout=60)
    ended_after = time.time() - cancelled_at
    output = read(out_file)
    print(f"--- cancelled serving job {job}: {state} {code} after {ended_after:.1f} s\n{output[-1500:]}")
    if stream.outcome != "completed":
        fail(f"the stream in flight when the job was cancelled did not complete: {stream.outcome} {stream.detail}")
    if not (late.outcome or "").startswith("http-error 503"):
        fail(f"a request during the drain got {late.outcome}, expected 503")
    if "tessera: server stopped" not in output:
        fail("the leader did not stop cleanly after the drain (SIGKILL at KillWait?)")
    print(f"ok: scancel drained the srun job: the stream completed, 503 meanwhile, stopped after {ended_after:.1f} s")


def mode_failed(slurm, binary, model, source, workdir):
    missing = os.path.join(workdir, "no-such-model.gguf")
    for script, flags in (("single-node.sbatch", []), ("multi-node-srun.sbatch", ["--nodes", "1",
                                                                                  "--gpus-per-node", "0"])):
        path = os.path.join(source, "cluster", "slurm", script)
        job, out_file = submit(slurm, path, generate_args(missing), workdir, "failed-" + script, flags)
        state, code = slurm.wait_job(job, timeout=120)
        output = read(out_file)
        print(f"--- job {job} ({script}): {state} {code}\n{output}")
        if state != "FAILED" or code != "1:0":
            fail(f"{script}: a job whose ranks fail shows {state} exit {code}, expected FAILED 1:0")
        if "no-such-model.gguf" not in output or "tessera: error:" not in output:
            fail(f"{script}: the ranks' error message is not in the job's output")
        if "tessera: ranks exited with status 1" not in output:
            fail(f"{script}: the script did not report the ranks' status")
        print(f"ok: {script}: failed ranks make the job FAILED with exit 1")


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    mode, binary, model, source = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3], sys.argv[4]
    if os.geteuid() != 0:
        print("SKIP: needs root to run slurmd")
        return SKIP
    if missing_tools():
        print("SKIP: Slurm/munge not installed (scripts/install-deps.sh installs them): missing "
              + ", ".join(missing_tools()))
        return SKIP
    if not os.path.isfile(model):
        print(f"SKIP: default model not found at {model} (run scripts/fetch-model.sh)")
        return SKIP
    modes = {"sbatch": mode_sbatch, "srun": mode_srun, "failed": mode_failed}
    if mode not in modes:
        print(f"unknown mode {mode!r}; one of {sorted(modes)}")
        return 2
    with tempfile.TemporaryDirectory(prefix="tessera-slurm-jobs-") as workdir, LocalSlurm(cpus=8) as slurm:
        # This machine has fewer cores than ranks plus their threads: ranks waiting in MPI must yield the core
        # (mpirun does so by itself only when it sees more ranks than slots).
        slurm.job_env = dict(slurm.env, TESSERA_HOME=source, TESSERA_BIN=binary, OMPI_MCA_mpi_yield_when_idle="1")
        modes[mode](slurm, binary, model, source, workdir)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
