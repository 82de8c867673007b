#!/usr/bin/env python3
"""`tessera inspect` end to end: the real binary on SmolLM2's GGUF and on the tiny Hugging Face models, in text and
JSON, valid and impossible layouts, a missing file. Runs as one process (no mpirun): inspect must not need MPI.

Usage: inspect_test.py TESSERA_BINARY MODEL_GGUF TINY_LLAMA_DIR TINY_QWEN2_DIR
Exit 77 (CTest's skip code) when the GGUF model is absent, or 1 where TESSERA_REQUIRE_TEST_DATA=1 (test_data.py).
"""
import json
import os
import subprocess
import sys

from test_data import missing_file_exit_code

TIMEOUT_S = 60
failures = []


def run(binary, *args):
    return subprocess.run([binary, "inspect", *args], capture_output=True, text=True, timeout=TIMEOUT_S)


def check(name, condition, detail=""):
    if condition:
        print(f"ok   {name}")
    else:
        print(f"FAIL {name}{': ' + detail if detail else ''}")
        failures.append(name)


def expect_lines(name, output, expected):
    lines = [" ".join(line.split()) for line in output.splitlines()]
    for want in expected:
        check(f"{name}: line {want!r}", any(want in line for line in lines), f"\n--- output ---\n{output}")


def main():
    binary, model, tiny_llama, tiny_qwen2 = sys.argv[1:5]
    absent = missing_file_exit_code(model)
    if absent is not None:
        return absent

    # SmolLM2, text, default layout.
    r = run(binary, model)
    check("smollm2 text: exit 0", r.returncode == 0, r.stderr)
    expect_lines("smollm2 text", r.stdout, [
        "architecture llama", "layers 30", "hidden 576", "heads / KV heads 9 / 3", "head_dim 64", "FFN 1536",
        "vocab 49152", "tied embeddings yes", "QKV bias no", "parameters 134,515,008", "weights: 272 tensors",
        "Q4_1", "tokenizer: byte-level BPE", "pre-tokenizer smollm", 'EOS 2 "<|im_end|>"', "chat template chatml",
        "layout tp=1 pp=1: 1 rank(s)", "total",
    ])

    # SmolLM2, JSON, tp=3 pp=2: the plan is consistent with itself and with the file.
    r = run(binary, model, "--tp", "3", "--pp", "2", "--json", "--weight-dtype", "f32")
    check("smollm2 json: exit 0", r.returncode == 0, r.stderr)
    report = json.loads(r.stdout)
    cfg, weights, tok, layout = report["model"], report["weights"], report["tokenizer"], report["layout"]
    check("json: config", (cfg["num_layers"], cfg["num_heads"], cfg["num_kv_heads"], cfg["parameter_count"]) ==
          (30, 9, 3, 134515008), str(cfg))
    check("json: rms eps printed as written", cfg["rms_norm_eps"] == 1e-05, str(cfg["rms_norm_eps"]))
    check("json: per-type bytes add up", sum(t["stored_bytes"] for t in weights["by_type"]) == weights["stored_bytes"])
    check("json: weights fit in the file", 0 < weights["stored_bytes"] <= os.path.getsize(model))
    check("json: tokenizer", tok["available"] and tok["chat_template"]["family"] == "chatml" and
          tok["eos"] == {"id": 2, "text": "<|im_end|>"}, str(tok))
    ranks = layout["ranks"]
    check("json: layout valid, 6 ranks", layout["valid"] and len(ranks) == 6, str(layout))
    check("json: rank = stage * tp + tp_rank",
          all(x["rank"] == x["stage"] * 3 + x["tp_rank"] for x in ranks))
    check("json: layers 0-15 then 15-30",
          [(x["layers"]["begin"], x["layers"]["end"]) for x in ranks] == [(0, 15)] * 3 + [(15, 30)] * 3)
    check("json: q heads 3 per rank, kv heads 1", all(x["q_heads"]["end"] - x["q_heads"]["begin"] == 3 and
                                                      x["kv_heads"]["end"] - x["kv_heads"]["begin"] == 1 for x in ranks))
    check("json: vocab slices cover the vocabulary",
          sorted((x["vocab"]["begin"], x["vocab"]["end"]) for x in ranks[:3]) == [(0, 16384), (16384, 32768),
                                                                                  (32768, 49152)])
    check("json: totals", sum(x["held_bytes"] for x in ranks) == layout["total_held_bytes"] and
          sum(x["stored_bytes"] for x in ranks) == layout["total_stored_bytes"])

    # The held bytes follow --weight-dtype.
    q8 = json.loads(run(binary, model, "--tp", "3", "--pp", "2", "--json", "--weight-dtype", "q8_0").stdout)
    # (the embedding stays f32 on the first stage, so less than 1.125 / 4 of the f32 bytes is too much to ask)
    check("q8_0 holds under half the f32 bytes, reads the same",
          q8["layout"]["total_held_bytes"] < layout["total_held_bytes"] / 2 and
          q8["layout"]["total_stored_bytes"] == layout["total_stored_bytes"])
    # The default keeps the file's own blocks: fewer bytes than q8_0 for this Q4_1 file.
    native = json.loads(run(binary, model, "--tp", "3", "--pp", "2", "--json").stdout)
    check("default (native) holds fewer bytes than q8_0, reads the same",
          native["layout"]["total_held_bytes"] < q8["layout"]["total_held_bytes"] and
          native["layout"]["total_stored_bytes"] == layout["total_stored_bytes"])

    # Impossible layouts: the engine's message, exit code 2, in text and JSON.
    r = run(binary, model, "--tp", "2")
    check("tp=2: exit 2", r.returncode == 2, f"exit {r.returncode}")
    check("tp=2: message", "tp=2 does not divide the model's 9 attention heads" in r.stderr, r.stderr)
    check("tp=2: no table", "layout tp=2 pp=1: invalid" in r.stdout and "rank stage" not in r.stdout, r.stdout)
    r = run(binary, model, "--tp", "2", "--json")
    bad = json.loads(r.stdout)["layout"]
    check("tp=2 json: exit 2, error", r.returncode == 2 and not bad["valid"] and "9 attention heads" in bad["error"])
    r = run(binary, tiny_llama, "--pp", "5")
    check("pp=5: exit 2 with message", r.returncode == 2 and "cannot split 4 layers over pp=5" in r.stderr, r.stderr)
    r = run(binary, tiny_qwen2, "--tp", "2")
    check("qwen2 tp=2: KV heads message", r.returncode == 2 and "3 KV heads" in r.stderr, r.stderr)

    # A Hugging Face directory: no tokenizer.json support yet, shown as such; the layout table still works.
    r = run(binary, tiny_llama, "--tp", "2", "--pp", "2")
    check("tiny llama: exit 0", r.returncode == 0, r.stderr)
    expect_lines("tiny llama", r.stdout, [
        "heads / KV heads 6 / 1", "RoPE scaling llama3, factor 8", "tied embeddings no", "F32 39 tensors",
        "tokenizer: unavailable", "layout tp=2 pp=2: 4 rank(s)", "3 1 1 2-3 3-5 0-0 48-95 192-383",
    ])
    r = run(binary, tiny_qwen2, "--tp", "3", "--json")
    report = json.loads(r.stdout)
    check("tiny qwen2 json", r.returncode == 0 and report["model"]["attention_qkv_bias"] and
          report["model"]["tie_word_embeddings"] and len(report["layout"]["ranks"]) == 3, r.stdout[:400])

    # Bad input: one clear message naming the culprit, non-zero exit.
    r = run(binary, "/nonexistent/model.gguf")
    check("missing file", r.returncode != 0 and "/nonexistent/model.gguf does not exist" in r.stderr, r.stderr)
    r = run(binary, model, "--weight-dtype", "int3")
    check("bad --weight-dtype", r.returncode != 0 and "int3" in r.stderr, r.stderr)

    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
