#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.cpp) with clang-14, AddressSanitizer and UBSan in a
# separate build directory, then runs each for the given number of seconds on a copy of its seed corpus
# (tests/fuzz/corpus/<name>/). Exits non-zero when any fuzzer finds a crash, leak or sanitizer report; the
# reproducer is left in <build>/fuzz-artifacts/<name>/.
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

failed=()
for binary in "$build"/tests/fuzz/fuzz_*; do
  [[ -x "$binary" && -f "$binary" ]] || continue
  name="$(basename "$binary")"
  if [[ -n "${FUZZERS:-}" && " $FUZZERS " != *" $name "* ]]; then continue; fi
  seeds="$repo/tests/fuzz/corpus/$name"
  # Work on a copy: new inputs libFuzzer finds must not land in the committed seed corpus.
  corpus="$build/fuzz-corpus/$name"
  artifacts="$build/fuzz-artifacts/$name/"
  mkdir -p "$corpus" "$artifacts"
  if [[ -d "$seeds" ]]; then cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true; fi
  echo "== $name: ${seconds}s on $(ls "$corpus" | wc -l) inputs"
  if ! "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$corpus" >"$build/fuzz-$name.log" 2>&1; then
    echo "!! $name failed; log: $build/fuzz-$name.log, reproducer in $artifacts"
    tail -n 40 "$build/fuzz-$name.log"
    failed+=("$name")
  else
    grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$build/fuzz-$name.log" | sed "s/^/   /" || true
  fi
done

if (( ${#failed[@]} )); then
  echo "fuzzers with findings: ${failed[*]}"
  exit 1
fi
echo "all fuzzers ran clean"
