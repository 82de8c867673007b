#!/usr/bin/env python3
"""--verify-sha256 under mpirun (2 ranks, tp=1 pp=2): a correct manifest (or the bare hash of a single-file model)
loads and generates; a wrong hash, an unlisted shard or a modified file ends every rank with a non-zero exit, quickly,
and rank 0 prints one error line naming the file, the expected and the actual hash. Each rank's own exit status is
recorded by a wrapper, so "every rank fails" is checked, not only mpirun's status. Runs on the default GGUF model
and on the sharded tiny Llama (two safetensors shards, token ids as the prompt: it has no tokenizer).

Usage: integrity_test.py TESSERA_BINARY MODEL_PATH SHARDED_MODEL_DIR (exit 77 when MODEL_PATH is absent: test_data.py)
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

from test_data import missing_file_exit_code

TIMEOUT_S = 120
FAIL_FAST_S = 60  # a failing check must end the job well before this (at the end of the load phase at the latest)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(path, entries):
    with open(path, "w") as f:
        for digest, name in entries:
            f.write(f"{digest}  {name}\n")


def run_ranks(work, binary, args, np=2):
    """mpirun of `tessera ARGS` with a wrapper that records each rank's exit status; returns (run, statuses, s)."""
    status_dir = tempfile.mkdtemp(dir=work, prefix="status-")
    wrapper = os.path.join(work, "rank.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\n"$@"\nrc=$?\necho $rc > "$STATUS_DIR/rank-$OMPI_COMM_WORLD_RANK"\nexit $rc\n')
    os.chmod(wrapper, 0o755)
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-x", f"STATUS_DIR={status_dir}", "-np", str(np)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    start = time.monotonic()
    run = subprocess.run(cmd + [wrapper, binary] + args, capture_output=True, text=True, timeout=TIMEOUT_S)
    seconds = time.monotonic() - start
    statuses = {}
    for name in os.listdir(status_dir):
        with open(os.path.join(status_dir, name)) as f:
            statuses[int(name.split("-")[1])] = int(f.read().strip() or "-1")
    return run, statuses, seconds


def main():
    binary, model, sharded = sys.argv[1], sys.argv[2], sys.argv[3]
    absent = missing_file_exit_code(model)
    if absent is not None:
        return absent
    work = tempfile.mkdtemp(prefix="tessera-integrity-")
    failures = 0
    try:
        gguf_hash = sha256(model)
        gguf_name = os.path.basename(model)
        good = os.path.join(work, "good.sha256")  # kept outside the model's directory: matched by basename
        write_manifest(good, [(gguf_hash, gguf_name)])
        wrong = os.path.join(work, "wrong.sha256")
        write_manifest(wrong, [("0" * 64, gguf_name)])
        # A copy of the sharded model with its manifest inside, as `sha256sum *.safetensors > model.sha256` writes it.
        tiny = os.path.join(work, "tiny")
        shutil.copytree(sharded, tiny)
        shards = sorted(n for n in os.listdir(tiny) if n.endswith(".safetensors"))
        tiny_good = os.path.join(tiny, "model.sha256")
        write_manifest(tiny_good, [(sha256(os.path.join(tiny, n)), n) for n in shards])
        tiny_wrong = os.path.join(work, "tiny-wrong.sha256")
        write_manifest(tiny_wrong, [(sha256(os.path.join(tiny, shards[0])), shards[0]), ("f" * 64, shards[1])])
        tiny_unlisted = os.path.join(work, "tiny-unlisted.sha256")
        write_manifest(tiny_unlisted, [(sha256(os.path.join(tiny, shards[0])), shards[0])])
        gen = ["generate", "--tp", "1", "--pp", "2", "--max-tokens", "4"]
        text = ["--model", model, "--prompt", "hello"]
        ids = ["--model", tiny, "--prompt-ids", "1 2 3"]
        shard2 = os.path.join(tiny, shards[1])
        # A copy whose second shard lost its tail (a truncated download): the load fails too, but the error reported
        # must be the integrity one, naming the shard (the hash runs alongside the load and is preferred).
        truncated = os.path.join(work, "truncated")
        shutil.copytree(sharded, truncated)
        truncated_shard = os.path.join(truncated, shards[1])
        with open(truncated_shard, "r+b") as f:
            f.truncate(os.path.getsize(truncated_shard) // 2)
        truncated_manifest = os.path.join(work, "truncated.sha256")
        write_manifest(truncated_manifest, [(sha256(os.path.join(tiny, n)), n) for n in shards])
        cases = [
            # (name, args, expected substrings of the one error line, or None: must succeed)
            ("gguf, manifest", gen + text + ["--verify-sha256", good], None),
            ("gguf, bare hash", gen + text + ["--verify-sha256", gguf_hash], None),
            ("sharded, manifest in the model dir", gen + ids + ["--verify-sha256", tiny_good], None),
            ("gguf, wrong hash", gen + text + ["--verify-sha256", wrong],
             [f"{model}: expected sha256 {'0' * 64}, got {gguf_hash}", wrong]),
            ("gguf, wrong bare hash (serve)",
             ["serve", "--tp", "1", "--pp", "2", "--port", "0", "--model", model, "--verify-sha256", "1" * 64],
             [f"{model}: expected sha256 {'1' * 64}, got {gguf_hash}"]),
            ("sharded, one wrong shard", gen + ids + ["--verify-sha256", tiny_wrong],
             [f"{shard2}: expected sha256 {'f' * 64}, got {sha256(shard2)}"]),
            ("sharded, truncated shard (the load fails too)",
             gen + ["--model", truncated, "--prompt-ids", "1 2 3", "--verify-sha256", truncated_manifest],
             [f"model integrity check failed: {truncated_shard}: expected sha256 {sha256(shard2)}, got "]),
            ("sharded, shard not in the manifest", gen + ids + ["--verify-sha256", tiny_unlisted],
             [f"{shard2} is not in {tiny_unlisted}"]),
            ("sharded, bare hash for two files", gen + ids + ["--verify-sha256", gguf_hash],
             ["a single hash checks a single-file model"]),
            ("malformed manifest", gen + text + ["--verify-sha256", os.path.join(sharded, "config.json")],
             ["config.json:1: not a sha256sum line"]),
        ]
        for name, args, expected in cases:
            try:
                run, statuses, seconds = run_ranks(work, binary, args)
            except subprocess.TimeoutExpired:
                print(f"FAIL {name}: no exit within {TIMEOUT_S} s (a hang)")
                failures += 1
                continue
            output = run.stdout + run.stderr
            errors = [line for line in output.splitlines() if line.startswith("tessera: error")]
            problems = []
            if expected is None:
                if run.returncode != 0 or statuses != {0: 0, 1: 0}:
                    problems.append(f"exit {run.returncode}, ranks {statuses}")
                if "model integrity (--verify-sha256): every rank verified its files" not in run.stdout:
                    problems.append("no verification line in the layout report")
                if "--- 4 tokens" not in run.stdout and "tokens, finish reason" not in run.stdout:
                    problems.append("no generation")
            else:
                if run.returncode == 0:
                    problems.append("exit code 0")
                # A rank without a status was killed by mpirun once another had failed (serve's rank 0 stops its
                # HTTP server first): it did not exit 0 either.
                if not statuses or any(rc == 0 for rc in statuses.values()):
                    problems.append(f"not every rank exited non-zero: {statuses}")
                if len(errors) != 1:
                    problems.append(f"{len(errors)} error lines instead of one")
                else:
                    problems += [f"error line lacks {e!r}" for e in expected if e not in errors[0]]
                if seconds > FAIL_FAST_S:
                    problems.append(f"took {seconds:.1f} s")
            if problems:
                print(f"FAIL {name}: {'; '.join(problems)}\n--- output ---\n{output}\n--------------")
                failures += 1
            else:
                detail = errors[0] if errors else next(l for l in run.stdout.splitlines() if "model integrity" in l)
                print(f"ok   {name} ({seconds:.1f} s, ranks {statuses}): {detail.strip()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
