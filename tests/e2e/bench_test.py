#!/usr/bin/env python3
"""`tessera bench` on dummy:tiny under mpirun (tp=1 pp=1 and tp=2 pp=2): it runs every requested batch size through
the scheduler, writes positive throughputs and latencies, and counts the bytes of a decode step as the shapes say
(recomputed here from the tiny preset's published shape, independently of the C++).

Usage: bench_test.py TESSERA_BINARY
"""
import json
import os
import subprocess
import sys
import tempfile

TIMEOUT_S = 300
# The "tiny" preset (runtime/model/model_presets.cpp).
LAYERS, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 4, 128, 4, 2, 32, 256, 512
PROMPT, GEN = 12, 5


def mpirun(np):
    cmd = ["mpirun", "--oversubscribe", "-np", str(np)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


def expected_bytes(batch, tp, kv_bytes=4):
    """f32 weights and f32 KV (the CPU backend's default; kv_bytes=2 for --kv-cache-dtype f16), every matrix once,
    KV at the middle of the decode phase."""
    q, kv = HEADS * HEAD_DIM, max(KV_HEADS, tp) * HEAD_DIM  # tp above the KV-head count replicates them
    per_layer = HIDDEN * (q + 2 * kv) + q * HIDDEN + 3 * HIDDEN * FFN
    weights = (per_layer * LAYERS + VOCAB * HIDDEN) * 4
    norms = (2 * LAYERS + 1) * HIDDEN * 4
    embedding_rows = batch * HIDDEN * 4
    kv_cache = batch * (PROMPT + GEN / 2) * LAYERS * 2 * kv * kv_bytes
    return weights + norms + embedding_rows + kv_cache


def check_cpu_activations(binary):
    """--cpu-activations reaches the kernels of every rank (the kernels line says which), wins over
    TESSERA_CPU_ACTIVATIONS, and a bad value is refused naming the option."""
    failures = 0
    base = [binary, "bench", "--model", "dummy:tiny", "--batch", "1", "--prompt-len", "4", "--gen-len", "2",
            "--no-warmup"]
    for flag, environment, want in [([], None, "activations f32"), (["--cpu-activations", "int8"], None,
                                    "activations int8"), (["--cpu-activations", "f32"], "int8", "activations f32")]:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        env.pop("TESSERA_CPU_ACTIVATIONS", None)
        if environment:
            env["TESSERA_CPU_ACTIVATIONS"] = environment
        run = subprocess.run(mpirun(2) + base + ["--tp", "2"] + flag, capture_output=True, text=True,
                             timeout=TIMEOUT_S, env=env)
        if run.returncode != 0 or want not in run.stdout:
            print(f"FAIL {flag} (TESSERA_CPU_ACTIVATIONS={environment}): exit {run.returncode}, no '{want}' in\n"
                  f"{run.stdout}{run.stderr}")
            failures += 1
    run = subprocess.run(mpirun(1) + base + ["--cpu-activations", "int4"], capture_output=True, text=True,
                         timeout=TIMEOUT_S)
    if run.returncode == 0 or "--cpu-activations" not in run.stdout + run.stderr:
        print(f"FAIL --cpu-activations int4: exit {run.returncode}\n{run.stdout}{run.stderr}")
        failures += 1
    return failures


def main():
    binary = sys.argv[1]
    failures = 0
    # (tp, pp, KV dtype): the f16 cache's step reads half the KV bytes, and the column must say so.
    for tp, pp, kv_dtype in [(1, 1, "f32"), (2, 2, "f32"), (1, 1, "f16")]:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "bench.json")
            cmd = mpirun(tp * pp) + [binary, "bench", "--model", "dummy:tiny", "--tp", str(tp), "--pp", str(pp),
                                     "--batch", "1,3", "--prompt-len", str(PROMPT), "--gen-len", str(GEN),
                                     "--kv-cache-dtype", kv_dtype, "--json", out]
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S,
                                 env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
            print(run.stdout)
            if run.returncode != 0 or not os.path.exists(out):
                print(f"FAIL tp={tp} pp={pp}: exit {run.returncode}\n{run.stderr}")
                failures += 1
                continue
            with open(out) as f:
                report = json.load(f)
        rows = report["results"]
        if [r["batch"] for r in rows] != [1, 3]:
            print(f"FAIL tp={tp} pp={pp}: batches {[r['batch'] for r in rows]}")
            failures += 1
        for r in rows:
            positive = ["prefill_tokens_per_s", "decode_tokens_per_s", "decode_step_ms", "decode_achieved_gb_per_s"]
            bad = [k for k in positive if not r[k] > 0]
            want = expected_bytes(r["batch"], tp, 2 if kv_dtype == "f16" else 4)
            if bad or abs(r["decode_bytes_per_step"] - want) > 1e-6 * want:
                print(f"FAIL tp={tp} pp={pp} batch {r['batch']}: non-positive {bad}; bytes/step "
                      f"{r['decode_bytes_per_step']} vs {want} from the shapes")
                failures += 1
            # tokens/s, latency and bandwidth must tell the same story.
            step_s = r["decode_step_ms"] / 1e3
            if abs(r["decode_tokens_per_s"] * step_s - r["batch"]) > 1e-6 * r["batch"] or \
               abs(r["decode_achieved_gb_per_s"] * 1e9 * step_s - r["decode_bytes_per_step"]) > 1e-3 * want:
                print(f"FAIL tp={tp} pp={pp} batch {r['batch']}: inconsistent rates {r}")
                failures += 1
    failures += check_cpu_activations(binary)
    print("OK" if failures == 0 else f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
