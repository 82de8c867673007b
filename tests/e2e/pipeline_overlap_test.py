#!/usr/bin/env python3
"""Micro-batches really overlap: `tessera bench` at pp=2 (two ranks, dummy SmolLM2-sized weights, 16 sequences)
with TESSERA_STAGE_TRACE, which makes every rank record the wall-clock interval of its compute for each plan.

- With --micro-batches 2 (the default at pp=2) the leader keeps two plans in flight: their micro_batch ids are 0
  and 1, each takes half the sequences, and stage 0 computes one micro-batch while stage 1 computes the other (the
  intervals of different micro-batches on the two stages intersect, for most decode steps).
- With --micro-batches 1 the stages take turns: no interval of stage 0 intersects one of stage 1.

Usage: pipeline_overlap_test.py TESSERA_BINARY
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

TIMEOUT_S = 300
BATCH, PROMPT, GEN = 16, 8, 9


def mpirun(np):
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(np)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


def traced_bench(binary, micro_batches, tmp):
    prefix = os.path.join(tmp, f"mb{micro_batches}")
    cmd = mpirun(2) + [binary, "bench", "--model", "dummy:smollm2-135m", "--pp", "2", "--batch", str(BATCH),
                       "--prompt-len", str(PROMPT), "--gen-len", str(GEN), "--no-warmup",
                       "--micro-batches", str(micro_batches)]
    env = dict(os.environ, TESSERA_STAGE_TRACE=prefix, TESSERA_THREADS="1", OPENBLAS_NUM_THREADS="1")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    if run.returncode != 0:
        raise SystemExit(f"FAIL bench --micro-batches {micro_batches}: exit {run.returncode}\n{run.stdout}\n{run.stderr}")
    records = []
    for path in sorted(glob.glob(prefix + ".rank*.jsonl")):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def overlapping_pairs(records):
    """(stage-0 record, stage-1 record) pairs of different plans whose compute intervals intersect."""
    first = [r for r in records if r["stage"] == 0]
    second = [r for r in records if r["stage"] == 1]
    return [(a, b) for a in first for b in second
            if a["step"] != b["step"] and min(a["end_us"], b["end_us"]) > max(a["begin_us"], b["begin_us"])]


def main():
    binary = sys.argv[1]
    failures = 0

    def check(ok, what):
        nonlocal failures
        print(("ok   " if ok else "FAIL ") + what)
        failures += 0 if ok else 1

    with tempfile.TemporaryDirectory() as tmp:
        piped = traced_bench(binary, 2, tmp)
        serial = traced_bench(binary, 1, tmp)

    stages = {r["stage"] for r in piped}
    check(stages == {0, 1}, f"both stages traced their work (stages {sorted(stages)})")
    ids = {r["micro_batch"] for r in piped}
    check(ids == {0, 1}, f"two micro-batches in flight carry ids 0 and 1 (seen {sorted(ids)})")
    decode = [r for r in piped if r["stage"] == 0 and r["rows"] == r["sequences"]]
    check(decode and all(r["sequences"] == BATCH // 2 for r in decode),
          f"each decode micro-batch holds half of the {BATCH} sequences ({sorted({r['sequences'] for r in decode})})")
    pairs = overlapping_pairs(piped)
    overlapped_steps = {b["step"] for _, b in pairs}
    stage1_steps = {r["step"] for r in piped if r["stage"] == 1}
    check(all(a["micro_batch"] != b["micro_batch"] for a, b in pairs),
          "only different micro-batches run at once on the two stages")
    check(len(overlapped_steps) >= len(stage1_steps) // 2,
          f"micro-batches overlap: {len(overlapped_steps)} of stage 1's {len(stage1_steps)} plans ran while stage 0 "
          f"computed another")
    check({r["micro_batch"] for r in serial} == {0}, "without micro-batches every plan is micro-batch 0")
    serial_pairs = overlapping_pairs(serial)
    check(not serial_pairs, f"without micro-batches the stages take turns ({len(serial_pairs)} overlapping pairs)")

    print(f"{failures} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
