#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one run, for a machine lent with a GPU (issue 14): build only what they need
# for one architecture, run `ctest -L gpu` (which holds the 2-rank NCCL and staged communicator tests, reported again
# on their own), then the benchmarks of scripts/bench/, and write logs and JSON under $OUT.
#
#   scripts/gpu/verify.sh [--build-dir DIR] [--arch 90] [--jobs N] [--debs DIR] [--use-debs] [--no-bench]
#
# Every check ends PASS, FAIL or NOT RUN with its reason (no GPU, no torch, ...); nothing is reported passed that did
# not run. Exit status: 0 every check ran and passed; 1 at least one FAILed; 2 none failed but some did NOT RUN (on a
# machine without a GPU: the build and the CPU checks ran, the GPU ones could not). Needs nvcc, cmake, ninja, a C++20
# compiler, and the Debian libraries of scripts/install-deps.sh; when `mpirun` is absent it unpacks the Open MPI .deb
# files of --debs (default .gpu-debs, made by scripts/gpu/prepare-debs.sh) into a folder and uses that.
# Output ($OUT, default out/gpu-verify): verify.json (the checks), verify.log (this whole transcript), ctest-gpu.xml
# (JUnit), decode.json / decode_eager.json / prefill.json (tessera bench), pytorch.json. See scripts/gpu/README.md.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$REPO/build-gpu"
ARCH=90
JOBS="$(nproc)"
DEBS="$REPO/.gpu-debs"
BENCH=1
USE_DEBS=0
while (($#)); do
  case "$1" in
    --build-dir) BUILD="$2"; shift 2 ;;
    --arch) ARCH="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --debs) DEBS="$2"; shift 2 ;;
    --no-bench) BENCH=0; shift ;;
    --use-debs) USE_DEBS=1; shift ;;  # the carried Open MPI even where mpirun exists (to try that path anywhere)
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "verify.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
  esac
done
OUT="${OUT:-$REPO/out/gpu-verify}"
mkdir -p "$OUT" "$BUILD"
# Absolute paths: the steps run from other directories (ctest in the build), and OPAL_PREFIX must be absolute.
BUILD="$(cd "$BUILD" && pwd)"
OUT="$(cd "$OUT" && pwd)"
[[ -d "$DEBS" ]] && DEBS="$(cd "$DEBS" && pwd)"
exec > >(tee "$OUT/verify.log") 2>&1
CHECKS="$BUILD/verify-checks.tsv"   # name \t status \t seconds \t detail
: >"$CHECKS"
STEP_TIMEOUT="${STEP_TIMEOUT:-900}"

record() {  # name status seconds detail
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$CHECKS"
  printf '>> %-34s %-8s %5ss  %s\n' "$1" "$2" "$3" "$4"
}
# run_check NAME LOG COMMAND...: runs COMMAND with its output in LOG (tail shown on failure); PASS or FAIL.
run_check() {
  local name="$1" log="$2"; shift 2
  local start=$SECONDS
  echo "== $name: $*"
  if timeout "$STEP_TIMEOUT" "$@" >"$log" 2>&1; then
    record "$name" PASS $((SECONDS - start)) "log: ${log#"$REPO/"}"
    return 0
  fi
  local rc=$?
  tail -n 60 "$log"
  record "$name" FAIL $((SECONDS - start)) "exit $rc; log: ${log#"$REPO/"}"
  return 1
}

echo "== tessera GPU verification, $(date -u +%FT%TZ), $(uname -n)"
echo "CPU: $(lscpu | sed -nE 's/^Model name: *//p')"

# --- what this machine has ---------------------------------------------------------------------------------------
GPUS=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  GPUS="$(nvidia-smi -L | grep -c '^GPU')"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv,noheader
fi
GPU_NAME="$( ((GPUS > 0)) && nvidia-smi --query-gpu=name --format=csv,noheader | head -n1 || echo none)"
echo "GPUs: $GPUS ($GPU_NAME)"
NO_GPU_REASON="no GPU (nvidia-smi lists none)"
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
missing_tools=()
for tool in cmake ninja nvcc c++ python3; do
  command -v "$tool" >/dev/null || missing_tools+=("$tool")
done
command -v nvcc >/dev/null && nvcc --version | tail -n 2

# --- Open MPI: the system's, else unpacked from carried Debian packages -------------------------------------------
mpi_start=$SECONDS
MPI_CMAKE_ARGS=()
if command -v mpirun >/dev/null && ((!USE_DEBS)); then
  record "open-mpi" PASS $((SECONDS - mpi_start)) "system mpirun: $(command -v mpirun), $(mpirun --version 2>&1 | head -n1)"
elif compgen -G "$DEBS/*.deb" >/dev/null; then
  prefix="$BUILD/openmpi-root"
  rm -rf "$prefix"
  source "$REPO/scripts/gpu/unpack-openmpi.sh"
  unpack_openmpi "$DEBS" "$prefix"
  # The tests' mpirun is fixed at configure time: the carried one, never a system one under the carried OPAL_PREFIX.
  MPI_CMAKE_ARGS=(-DMPIEXEC_EXECUTABLE="$prefix/usr/bin/mpiexec")
  unresolved="$(ldd "$prefix/usr/bin/orterun" 2>/dev/null | grep 'not found' | tr -s ' \t' ' ' | paste -sd, -)"
  if [[ -n "$unresolved" ]]; then
    record "open-mpi" FAIL $((SECONDS - mpi_start)) "unpacked from $DEBS, but libraries are missing: $unresolved"
  elif mpirun --version >/dev/null 2>&1; then
    record "open-mpi" PASS $((SECONDS - mpi_start)) "unpacked $(ls "$DEBS"/*.deb | wc -l) packages from $DEBS: $(mpirun --version 2>&1 | head -n1)"
  else
    record "open-mpi" FAIL $((SECONDS - mpi_start)) "mpirun unpacked from $DEBS does not run: $(mpirun --version 2>&1 | tail -n1)"
  fi
else
  record "open-mpi" FAIL 0 "no mpirun on PATH and no .deb files in $DEBS (scripts/gpu/prepare-debs.sh makes them)"
fi

# --- configure and build only what the GPU checks need -----------------------------------------------------------
built=0
if ((${#missing_tools[@]})); then
  record "configure" FAIL 0 "missing tools: ${missing_tools[*]}"
elif run_check "configure (sm_$ARCH)" "$BUILD/verify-configure.log" \
     cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_CUDA=ON \
       -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DTESSERA_BUILD_TESTS=ON "${MPI_CMAKE_ARGS[@]}"; then
  # tessera_gpu_tests: every gpu-labelled test binary (cmake/TesseraTesting.cmake); tessera: the benchmarks.
  if run_check "build (tessera_gpu_tests, tessera)" "$BUILD/verify-build.log" \
       cmake --build "$BUILD" -j "$JOBS" --target tessera_gpu_tests tessera; then
    built=1
  fi
fi

# --- ctest -L gpu --------------------------------------------------------------------------------------------------
# Reads CTest's own verdicts: on a machine without a GPU none may fail (a failure there is still a bug, e.g. a crash
# instead of a skip) and the check is NOT RUN; with a GPU every one must pass and none may skip.
ctest_summary() {  # log -> "passed failed skipped total"
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
total = passed = failed = skipped = 0
for line in text.splitlines():
    m = re.search(r"Test +#\d+: +\S+ \.+\**\s*(\S.*?)\s+[\d.]+ sec$", line)
    if not m:
        continue
    total += 1
    verdict = m.group(1)
    if verdict.startswith("Passed"):
        passed += 1
    elif verdict.startswith("Skipped") or verdict.startswith("Not Run (Disabled)"):  # a missing binary: failed
        skipped += 1
    else:
        failed += 1
print(passed, failed, skipped, total)
PY
}
gpu_ctest() {  # name regex-args...
  local name="$1"; shift
  local log="$BUILD/verify-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-').log" start=$SECONDS
  if ((!built)); then record "$name" "NOT RUN" 0 "the build did not finish"; return; fi
  echo "== $name: ctest $*"
  (cd "$BUILD" && timeout "$STEP_TIMEOUT" ctest --output-on-failure "$@") >"$log" 2>&1
  read -r passed failed skipped total < <(ctest_summary "$log")
  local took=$((SECONDS - start)) detail="$passed passed, $failed failed, $skipped skipped of $total"
  if ((total == 0)); then
    record "$name" FAIL $took "no test matched ($*)"
  elif ((failed > 0)); then
    grep -E "^\s*[0-9]+ - |tests failed|Failed|\*\*\*" "$log" | tail -n 40
    record "$name" FAIL $took "$detail; log: ${log#"$REPO/"}"
  elif ((GPUS == 0)); then
    # Host-only cases (a test's own reference code) may pass; every case that needs the GPU skipped.
    record "$name" "NOT RUN" $took "$NO_GPU_REASON: $skipped of $total skipped, $passed host-only passed, none failed"
  elif ((skipped > 0)); then
    grep -E "Skipped|SKIPPED" "$log" | head -n 20
    record "$name" FAIL $took "$detail: a GPU is present, yet some skipped; log: ${log#"$REPO/"}"
  else
    record "$name" PASS $took "$detail"
  fi
}
gpu_ctest "ctest -L gpu" -L gpu -j 1 --output-junit "$OUT/ctest-gpu.xml"
gpu_ctest "nccl communicator, 2 ranks" -R '^parallel\.nccl_communicator\.np2$'
gpu_ctest "staged communicator, 2 ranks" -R '^parallel\.staged_communicator\.np2$'

# --- benchmarks ----------------------------------------------------------------------------------------------------
if ((!BENCH)); then
  record "bench: tessera decode/prefill" "NOT RUN" 0 "--no-bench"
  record "bench: pytorch llama-8b" "NOT RUN" 0 "--no-bench"
else
  if ((GPUS == 0)); then
    record "bench: tessera decode/prefill" "NOT RUN" 0 "$NO_GPU_REASON"
  elif ((!built)); then
    record "bench: tessera decode/prefill" "NOT RUN" 0 "the build did not finish"
  else
    OUT="$OUT" run_check "bench: tessera decode/prefill" "$BUILD/verify-bench-tessera.log" \
      bash "$REPO/scripts/bench/gpu_decode_roofline.sh" "$BUILD" && cat "$BUILD/verify-bench-tessera.log"
  fi
  if ((GPUS == 0)); then
    record "bench: pytorch llama-8b" "NOT RUN" 0 "$NO_GPU_REASON"
  elif ! python3 -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
    record "bench: pytorch llama-8b" "NOT RUN" 0 "python3 has no torch with CUDA"
  else
    run_check "bench: pytorch llama-8b" "$BUILD/verify-bench-pytorch.log" \
      python3 "$REPO/scripts/bench/pytorch_llama_8b.py" --json "$OUT/pytorch.json" && tail -n 40 "$BUILD/verify-bench-pytorch.log"
  fi
fi

# --- summary ---------------------------------------------------------------------------------------------------------
python3 - "$CHECKS" "$OUT/verify.json" "$GPUS" "$GPU_NAME" <<'PY'
import json, platform, subprocess, sys
checks_file, out, gpus, gpu_name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
checks = []
for line in open(checks_file):
    name, status, seconds, detail = line.rstrip("\n").split("\t")
    checks.append({"name": name, "status": status, "seconds": int(seconds), "detail": detail})
cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
cpu = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "")
report = {"host": platform.node(), "cpu": cpu, "gpus": gpus, "gpu": gpu_name, "checks": checks,
          "failed": sum(c["status"] == "FAIL" for c in checks),
          "not_run": sum(c["status"] == "NOT RUN" for c in checks)}
json.dump(report, open(out, "w"), indent=1)
print("\n== summary")
for c in checks:
    print(f"{c['status']:<8} {c['name']:<34} {c['detail']}")
PY
failed=$(grep -c $'\tFAIL\t' "$CHECKS")
not_run=$(grep -c $'\tNOT RUN\t' "$CHECKS")
echo "verify.sh: $failed failed, $not_run not run; results in $OUT/verify.json"
if ((failed)); then exit 1; fi
if ((not_run)); then exit 2; fi
exit 0
