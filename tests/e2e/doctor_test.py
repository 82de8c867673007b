"""`tessera doctor` on this machine: one pass/warn/fail line per check, a hint under each warn and fail, exit 0
without failures. Cross-checked against the tools themselves: the MPI and UCX versions that ompi_info and ucx_info
report, the model hash that scripts/fetch-model.sh pins. Failures are provoked for real: a damaged model copy, an
open-files limit of 512 (ulimit), --require-gpu on a node without a GPU. Under mpirun it names the launcher.
Usage: doctor_test.py TESSERA_BIN SOURCE_DIR MODEL"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = []
runs = []  # every doctor invocation, printed in full when a check fails


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def doctor(binary, args=(), prefix=(), env=None):
    r = subprocess.run(list(prefix) + [binary, "doctor"] + list(args), capture_output=True, text=True,
                       timeout=120, env=env)
    runs.append(r)
    return r


def lines_of(out, name):
    return [l for l in out.splitlines() if re.match(r"\[(pass|warn|fail)\] " + re.escape(name) + r"\s", l)]


def main():
    binary, source, model = sys.argv[1], sys.argv[2], sys.argv[3]
    has_model = os.path.isfile(model)
    env = dict(os.environ, TESSERA_MODEL_DIR=os.path.dirname(model))
    r = doctor(binary, env=env)
    print(r.stdout)
    check(r.returncode == 0, f"exit 0 on this machine (no failures), got {r.returncode}")
    lines = r.stdout.splitlines()
    for i, line in enumerate(lines[:-1]):
        ok = re.match(r"\[(pass|warn|fail)\] \S+", line) or line.strip().startswith("hint:")
        check(bool(ok), f"line is a check or a hint: {line!r}")
        if line.startswith(("[warn]", "[fail]")):
            check(i + 1 < len(lines) and "hint:" in lines[i + 1], f"a hint follows {line[:40]!r}")
    check(re.match(r"doctor: \d+ pass, \d+ warn, 0 fail", lines[-1]) is not None, "summary line")
    for name in ("mpi", "launcher", "pmix", "ucx", "model", "cpu-kernels", "open-files", "nccl"):
        check(len(lines_of(r.stdout, name)) == 1, f"a '{name}' line")
    kernels_line = lines_of(r.stdout, "cpu-kernels")[0] if lines_of(r.stdout, "cpu-kernels") else ""
    with open("/proc/cpuinfo") as f:
        cpuinfo = f.read()
    isa = "avx512" if "avx512bw" in cpuinfo else "avx2" if " avx2" in cpuinfo else "scalar"
    check(kernels_line.startswith("[pass]") and f"best on this CPU: {isa}" in kernels_line
          and "activations" in kernels_line, f"the CPU kernels' path, as /proc/cpuinfo allows ({isa}): {kernels_line}")
    bad = doctor(binary, [], env=dict(env, TESSERA_CPU_ISA="avx9"))
    bad_line = lines_of(bad.stdout, "cpu-kernels")[0] if lines_of(bad.stdout, "cpu-kernels") else ""
    check(bad.returncode == 1 and bad_line.startswith("[fail]") and "avx9" in bad_line,
          f"a bad TESSERA_CPU_ISA fails the cpu-kernels check, naming it: {bad_line}")

    if not os.path.exists("/dev/nvidiactl"):
        gpu = " ".join(lines_of(r.stdout, "gpu"))
        check(gpu.startswith("[warn]") and "no GPU" in gpu and "this is a CPU node" in gpu,
              "without a GPU it says so plainly: " + gpu)
        rr = doctor(binary, ["--require-gpu"], env=env)
        check(rr.returncode == 1 and lines_of(rr.stdout, "gpu")[0].startswith("[fail]"),
              "--require-gpu on a CPU node fails")

    mpirun_version = re.search(r"\(Open MPI\) (\S+)", subprocess.run(["mpirun", "--version"], capture_output=True,
                                                                      text=True).stdout)
    mpi = lines_of(r.stdout, "mpi")[0]
    check(mpirun_version is not None and f"Open MPI v{mpirun_version.group(1)}" in mpi,
          f"MPI version as mpirun reports it: {mpi}")
    if shutil.which("ucx_info"):
        v = re.search(r"# (?:Library )?[Vv]ersion:? (\S+)", subprocess.run(["ucx_info", "-v"], capture_output=True,
                                                                 text=True).stdout)
        ucx = lines_of(r.stdout, "ucx")[0]
        check(v is not None and f"UCX {v.group(1)}" in ucx and "tcp" in ucx, f"UCX version and tcp transport: {ucx}")

    with open(os.path.join(source, "scripts", "fetch-model.sh")) as f:
        pinned = re.search(r'MODEL_SHA256="([0-9a-f]{64})"', f.read()).group(1)
    m = lines_of(r.stdout, "model")[0]
    if has_model:
        check(m.startswith("[pass]") and pinned in m, f"default model present with the pinned hash: {m}")
        with tempfile.TemporaryDirectory() as tmp:
            damaged = os.path.join(tmp, "damaged.gguf")
            with open(model, "rb") as src, open(damaged, "wb") as dst:
                dst.write(src.read(1 << 20))
            rd = doctor(binary, ["--model", damaged, "--sha256", pinned], env=env)
            dm = lines_of(rd.stdout, "model")[0]
            check(rd.returncode == 1 and dm.startswith("[fail]") and "expected " + pinned in dm
                  and "fetch-model.sh" in rd.stdout, f"a damaged model fails with a hint: {dm}")
    else:
        check(m.startswith("[warn]") and "not found" in m, "absent model: a warning")

    rl = doctor(binary, prefix=["bash", "-c", 'ulimit -n 512 && exec "$@"', "bash"], env=env)
    of = lines_of(rl.stdout, "open-files")[0]
    check(rl.returncode == 1 and of.startswith("[fail]") and "soft limit 512" in of and "ulimit -n 65536" in rl.stdout,
          f"open-files 512 fails with a hint: {of}")

    mpirun = ["mpirun", "--oversubscribe", "-np", "1"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    rm = doctor(binary, prefix=mpirun, env=env)
    la = lines_of(rm.stdout, "launcher")
    check(bool(la) and "Open MPI mpirun, rank 0 of 1" in la[0], f"under mpirun: {la}")

    rj = doctor(binary, ["--json"], env=env)
    try:
        out = json.loads(rj.stdout)
        counts = {s: sum(c["status"] == s for c in out["checks"]) for s in ("pass", "warn", "fail")}
        check(all(out[s] == counts[s] for s in counts) and counts["fail"] == 0, f"--json: {counts}")
    except (ValueError, KeyError) as e:
        check(False, f"--json parses: {e}")
    if failures:
        for r in runs:
            print(f"--- {' '.join(r.args)} exited {r.returncode}\n{r.stdout}\n--- stderr\n{r.stderr}")
        print(f"FAIL: {len(failures)} check(s)")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
