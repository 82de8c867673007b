#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.cpp) with clang-14, AddressSanitizer and UBSan in a
# separate build directory, then runs each for the given number of seconds on a copy of its seed corpus
# (tests/fuzz/corpus/<name>/), printing how many inputs each executed. Exits non-zero when any fuzzer finds a crash,
# leak or sanitizer report (the reproducer is left in <build>/fuzz-artifacts/<name>/), when its binary is missing, or
# when it did not run for the whole time.
#
#   scripts/run-fuzzers.sh [--build-only | --no-build] [seconds per fuzzer, default 30]
# Environment: BUILD_DIR (default build-fuzz), JOBS (default 2), FUZZERS (names to run, default all).
# `make test` builds with --build-only and CTest runs each fuzzer with --no-build (tests fuzz.<name>).
set -euo pipefail

mode=all
case "${1:-}" in
  --build-only) mode=build; shift ;;
  --no-build) mode=run; shift ;;
esac
seconds="${1:-30}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$repo/build-fuzz}"
jobs="${JOBS:-2}"

# Libraries get coverage instrumentation (fuzzer-no-link) and the sanitizers; the fuzzer binaries add libFuzzer's
# main through tests/fuzz/CMakeLists.txt.
if [[ "$mode" != run ]]; then
cmake -S "$repo" -B "$build" -G Ninja \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTESSERA_CUDA=OFF -DTESSERA_BUILD_TESTS=ON -DTESSERA_BUILD_FUZZERS=ON \
  -DTESSERA_SANITIZE=address,undefined \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
ninja -C "$build" -j "$jobs" tessera_fuzzers
fi
[[ "$mode" == build ]] && exit 0

# Every fuzzer of tests/fuzz/ (or those FUZZERS names) must have run for the whole bounded time: a missing binary,
# a crash, a sanitizer report, or a run that ended early (no "Done N runs in S second(s)" line with S >= seconds) is
# a failure, never a skip. The number of executions is printed for each.
names=()
if [[ -n "${FUZZERS:-}" ]]; then
  read -r -a names <<<"$FUZZERS"
else
  for source in "$repo"/tests/fuzz/fuzz_*.cpp; do names+=("$(basename "$source" .cpp)"); done
fi
(( ${#names[@]} )) || { echo "!! no fuzzers to run (tests/fuzz/fuzz_*.cpp)"; exit 1; }

failed=()
for name in "${names[@]}"; do
  binary="$build/tests/fuzz/$name"
  if [[ ! -f "$binary" || ! -x "$binary" ]]; then
    echo "!! $name: no fuzzer binary at $binary (build it: scripts/run-fuzzers.sh --build-only)"
    failed+=("$name")
    continue
  fi
  seeds="$repo/tests/fuzz/corpus/$name"
  # Work on a copy: new inputs libFuzzer finds must not land in the committed seed corpus.
  corpus="$build/fuzz-corpus/$name"
  artifacts="$build/fuzz-artifacts/$name/"
  log="$build/fuzz-$name.log"
  mkdir -p "$corpus" "$artifacts"
  if [[ -d "$seeds" ]]; then cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true; fi
  echo "== $name: ${seconds}s on $(ls "$corpus" | wc -l) inputs"
  if ! "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$corpus" >"$log" 2>&1; then
    echo "!! $name failed; log: $log, reproducer in $artifacts"
    tail -n 40 "$log"
    failed+=("$name")
    continue
  fi
  # libFuzzer's last words: "Done 123456 runs in 30 second(s)" and, with -print_final_stats=1, the stat:: lines.
  done_line="$(grep -E "^Done [0-9]+ runs in [0-9]+ second" "$log" | tail -n 1 || true)"
  runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
  ran_s="$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' <<<"$done_line")"
  if [[ -z "$done_line" || -z "$runs" ]]; then
    echo "!! $name: exited 0 without libFuzzer's final report (no Done line or stat::number_of_executed_units); log: $log"
    tail -n 20 "$log"
    failed+=("$name")
  elif (( ran_s < seconds || runs == 0 )); then
    echo "!! $name: ran $runs inputs in ${ran_s}s, not the bounded ${seconds}s; log: $log"
    failed+=("$name")
  else
    echo "   $name: $runs executions in ${ran_s}s, $(sed -nE 's/^stat::new_units_added: *([0-9]+).*/\1/p' "$log" | tail -n 1) new units"
  fi
done

if (( ${#failed[@]} )); then
  echo "fuzzers that failed: ${failed[*]}"
  exit 1
fi
echo "all fuzzers ran clean for ${seconds}s each: ${names[*]}"
