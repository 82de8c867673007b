#!/usr/bin/env python3
"""Wrong layouts and missing files end every rank with one clear message from rank 0 and a non-zero exit, never a
hang. Each case runs the real `tessera generate` (or serve, bench) under mpirun with a timeout. A --pp-layers
(parallel.pp_layers) partition that does not fit the model fails on every rank before any weight is loaded.

Usage: layout_errors_test.py TESSERA_BINARY MODEL_PATH TINY_MODEL_DIR (exit 77 when MODEL_PATH is absent: test_data.py)
"""
import os
import subprocess
import sys

from test_data import missing_file_exit_code

TIMEOUT_S = 120


def mpirun(np):
    cmd = ["mpirun", "--oversubscribe", "-np", str(np)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


def main():
    binary, model, tiny = sys.argv[1], sys.argv[2], sys.argv[3]
    absent = missing_file_exit_code(model)  # the first cases need SmolLM2's 9 heads
    if absent is not None:
        return absent
    cases = [
        # (name, ranks, args, expected substring of the one error line)
        ("tp does not divide heads", 2, ["--model", model, "--tp", "2", "--pp", "1"],
         "tp=2 does not divide the model's 9 attention heads"),
        ("world size != tp * pp", 4, ["--model", model, "--tp", "3", "--pp", "2"],
         "the layout tp=3 pp=2 needs 6 ranks but the MPI world has 4"),
        ("more stages than layers", 5, ["--model", tiny, "--tp", "1", "--pp", "5"],
         "cannot split 4 layers over pp=5 pipeline stages"),
        ("missing model file", 3, ["--model", "/nonexistent/model.gguf", "--tp", "1", "--pp", "3"],
         "/nonexistent/model.gguf does not exist"),
        ("truncated model file", 2, ["--model", "@TRUNCATED@", "--tp", "1", "--pp", "2"],
         "truncated.gguf"),
        # --pp-layers: the tiny model has 4 layers.
        ("--pp-layers sum is not the model's layers", 2, ["--model", tiny, "--pp", "2", "--pp-layers", "3,2"],
         "--pp-layers 3,2: the counts sum to 5 layers but the model has 4 (give 2 counts >= 1 that sum to 4, or auto)"),
        ("--pp-layers sum on SmolLM2", 2, ["--model", model, "--pp", "2", "--pp-layers", "19,12"],
         "--pp-layers 19,12: the counts sum to 31 layers but the model has 30"),
        ("--pp-layers count is not pp", 3, ["--model", tiny, "--pp", "3", "--pp-layers", "2,2"],
         "--pp-layers 2,2: 2 layer counts for pp=3 pipeline stages (give exactly 3, one per stage, or auto)"),
        ("--pp-layers with a zero", 2, ["--model", tiny, "--pp", "2", "--pp-layers", "4,0"],
         "--pp-layers 4,0: stage 1 has 0 layers; every stage needs at least one layer"),
        ("--pp-layers malformed", 2, ["--model", tiny, "--pp", "2", "--pp-layers", "2;2"],
         "--pp-layers '2;2': '2;2' is not a layer count"),
        ("--pp-layers auto, more stages than layers", 5, ["--model", tiny, "--pp", "5", "--pp-layers", "auto"],
         "cannot split 4 layers over pp=5 pipeline stages"),
        ("parallel.pp_layers in a config", 2, ["--config", "@CONFIG@", "--model", tiny],
         "--pp-layers 3,2: the counts sum to 5 layers but the model has 4"),
        ("serve: --pp-layers sum", 2, ["serve", "--model", tiny, "--pp", "2", "--pp-layers", "1,1", "--port", "0"],
         "--pp-layers 1,1: the counts sum to 2 layers but the model has 4"),
        ("bench: --pp-layers sum", 2, ["bench", "--model", tiny, "--pp", "2", "--pp-layers", "1,1"],
         "--pp-layers 1,1: the counts sum to 2 layers but the model has 4"),
    ]
    truncated = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tessera-e2e-{os.getpid()}-truncated.gguf")
    with open(model, "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read(1 << 20))  # the header and part of the tensor data: offsets now point past the end
    config = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tessera-e2e-{os.getpid()}-pp-layers.yaml")
    with open(config, "w") as f:
        f.write("parallel:\n  pp: 2\n  pp_layers: [3, 2]\n")
    failures = 0
    try:
        for name, np, args, expected in cases:
            args = [{"@TRUNCATED@": truncated, "@CONFIG@": config}.get(a, a) for a in args]
            if args[0] in ("serve", "bench"):
                cmd = mpirun(np) + [binary] + args
            else:
                cmd = mpirun(np) + [binary, "generate", "--prompt", "hello", "--max-tokens", "4"] + args
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"FAIL {name}: no exit within {TIMEOUT_S} s (a hang)")
                failures += 1
                continue
            output = run.stdout + run.stderr
            errors = [line for line in output.splitlines() if line.startswith("tessera: error")]
            problems = []
            if run.returncode == 0:
                problems.append("exit code 0")
            if len(errors) != 1:
                problems.append(f"{len(errors)} error lines instead of one")
            elif expected not in errors[0]:
                problems.append(f"error line lacks {expected!r}")
            if problems:
                print(f"FAIL {name}: {'; '.join(problems)}\n--- output ---\n{output}\n--------------")
                failures += 1
            else:
                print(f"ok   {name}: exit {run.returncode}: {errors[0]}")
    finally:
        os.unlink(truncated)
        os.unlink(config)
    print(f"{len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
