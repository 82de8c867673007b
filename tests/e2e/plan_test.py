"""`tessera plan` against numbers worked out by hand: Llama-2-70B, Llama-3-70B and Qwen2-72B (their published
Hugging Face config.json files, written here), at bf16 and FP8 weights, tp=8 pp=2 on two nodes of 8 x 80 GiB GPUs
(HBM 3350 GB/s, NVLink 450 GB/s, network 50 GB/s, 10 us per collective; 90% of memory usable, 2 GiB reserved;
context 8192, 2048 batched tokens, 256 sequences: the defaults). Also: the ranking, a model that fits nowhere, an
impossible tp, a preset and the default GGUF model as inputs.
Usage: plan_test.py TESSERA_BIN [DEFAULT_MODEL]"""
import json
import math
import os
import subprocess
import sys
import tempfile

GIB = 1024 ** 3
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def hf_config(arch, vocab, ffn, bias_model=False, rope_theta=10000.0, max_pos=4096):
    c = {"architectures": [arch], "hidden_act": "silu", "hidden_size": 8192, "intermediate_size": ffn,
         "num_attention_heads": 64, "num_hidden_layers": 80, "num_key_value_heads": 8, "vocab_size": vocab,
         "max_position_embeddings": max_pos, "rms_norm_eps": 1e-5, "rope_theta": rope_theta,
         "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}
    if bias_model:
        c.update({"use_sliding_window": False, "sliding_window": 131072, "max_window_layers": 80})
    return c


MODELS = {
    # name: (config.json, vocab, ffn, q/k/v bias)
    "Llama-2-70b-hf": (hf_config("LlamaForCausalLM", 32000, 28672), 32000, 28672, False),
    "Meta-Llama-3-70B": (hf_config("LlamaForCausalLM", 128256, 28672, rope_theta=500000.0, max_pos=8192),
                         128256, 28672, False),
    "Qwen2-72B": (hf_config("Qwen2ForCausalLM", 152064, 29568, bias_model=True, rope_theta=1000000.0,
                            max_pos=32768), 152064, 29568, True),
}


def by_hand(vocab, ffn, bias, weight_bytes):
    """tp=8 pp=2: every rank holds 40 layers; hidden 8192, 64 heads, 8 KV heads, head_dim 128 in all three."""
    q_local = 64 // 8 * 128          # 1024: this rank's 8 query heads
    kv_local = 8 // 8 * 128          # 128: this rank's one KV head
    matrices = (8192 * q_local       # q_proj shard
                + 2 * 8192 * kv_local  # k_proj, v_proj shards
                + q_local * 8192     # o_proj shard
                + 3 * 8192 * ffn // 8)  # gate, up, down shards
    small = 2 * 8192 + ((q_local + 2 * kv_local) if bias else 0)  # two RMSNorms (+ q/k/v biases), bf16
    per_layer = matrices * weight_bytes + small * 2
    embed = vocab // 8 * 8192 * 2    # this rank's vocabulary rows, bf16
    stage0 = 40 * per_layer + embed               # embedding on the first stage
    stage1 = 40 * per_layer + embed + 8192 * 2    # LM head and final norm on the last
    kv_token = 2 * 40 * kv_local * 2              # K and V, 40 layers, one head of 128, bf16
    act0 = 2048 * (2 * 8192 + q_local + 2 * kv_local + 2 * ffn // 8) * 2
    act1 = act0 + 256 * (vocab // 8) * 4          # fp32 logits of 256 sequences
    usable = 80 * GIB * 0.9 - 2 * GIB             # 70 GiB
    capacity = min(int(usable - stage0 - act0) // kv_token, int(usable - stage1 - act1) // kv_token)
    # Decode at batch 1: each stage reads its weights and 8192 tokens of KV at 3350 GB/s; 80 all-reduces (2 per
    # layer) of a 16 kB bf16 vector over 8 ranks at 10 us + 2*7/8*16384 B / 450 GB/s; the last stage all-gathers
    # 7 shards of vocab/8 fp32 logits; rank 7 -> rank 8 crosses from node 0 to node 1: 10 us + 16384 B / 50 GB/s.
    all_reduce = 10e-6 + 2 * 7 / 8 * 16384 / 450e9
    stage_time0 = (stage0 + kv_token * 8192) / 3350e9 + 80 * all_reduce
    stage_time1 = (stage1 + kv_token * 8192) / 3350e9 + 80 * all_reduce + 10e-6 + 7 * (vocab // 8) * 4 / 450e9
    decode_ms = (stage_time0 + stage_time1 + 10e-6 + 16384 / 50e9) * 1e3
    return {"stage0": stage0, "stage1": stage1, "kv_token": kv_token, "act0": act0, "act1": act1,
            "capacity": capacity, "decode_ms": decode_ms}


def plan(binary, args):
    r = subprocess.run([binary, "plan"] + args, capture_output=True, text=True, timeout=60)
    return r, (json.loads(r.stdout) if r.stdout.strip().startswith("{") else None)


def main():
    binary = sys.argv[1]
    default_model = sys.argv[2] if len(sys.argv) > 2 else ""
    cluster = ["--nodes", "2", "--gpus-per-node", "8", "--gpu-memory-gib", "80"]

    # One case spelled out in full, digits and all: Llama-2-70B, bf16.
    #  per layer: matrices 8192*1024 + 2*8192*128 + 1024*8192 + 3*8192*28672/8 = 106,954,752 elements * 2 bytes
    #             + norms 2*8192 * 2 bytes = 213,942,272 bytes; 40 layers = 8,557,690,880
    #  stage 0: + embedding 4000*8192*2 = 65,536,000 -> 8,623,226,880; stage 1: + LM head + norm -> 8,623,243,264
    #  KV per token: 2*40*128*2 = 20,480 bytes; activations 2048*(16384+1024+256+7168)*2 = 101,711,872
    #  capacity: (75,161,927,680 - 8,623,243,264 - 101,711,872 - 4,096,000) // 20,480 = 3,243,792 tokens
    spelled = by_hand(32000, 28672, False, 2)
    check(spelled["stage0"] == 8623226880 and spelled["stage1"] == 8623243264 and spelled["kv_token"] == 20480
          and spelled["act0"] == 101711872 and spelled["capacity"] == 3243792,
          "the spelled-out Llama-2-70B numbers agree with the formulas below")

    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, vocab, ffn, bias) in MODELS.items():
            os.makedirs(os.path.join(tmp, name))
            path = os.path.join(tmp, name, "config.json")
            with open(path, "w") as f:
                json.dump(config, f)
            for dtype, wbytes in (("bf16", 2), ("fp8", 1)):
                want = by_hand(vocab, ffn, bias, wbytes)
                r, out = plan(binary, [path, "--tp", "8", "--pp", "2", "--dtype", dtype, "--json"] + cluster)
                if out is None:
                    check(False, f"{name} {dtype}: plan printed no JSON ({r.returncode}): {r.stderr}")
                    continue
                lay = out["layouts"][0]
                s0, s1 = lay["stages"]
                got = {"stage0": s0["weight_bytes"], "stage1": s1["weight_bytes"], "kv_token": s0["kv_bytes_per_token"],
                       "act0": s0["activation_bytes"], "act1": s1["activation_bytes"],
                       "capacity": lay["kv_capacity_tokens"], "decode_ms": lay["decode_ms_per_token"]}
                exact = all(got[k] == want[k] for k in want if k != "decode_ms")
                close = math.isclose(got["decode_ms"], want["decode_ms"], rel_tol=1e-9)
                check(exact and close and lay["fits"] and s1["kv_bytes_per_token"] == want["kv_token"],
                      f"{name} {dtype} tp=8 pp=2: {got} == by hand {want}")

        # Text output carries the same layout line; FP8 halves the matrices, so more KV fits.
        llama3 = os.path.join(tmp, "Meta-Llama-3-70B", "config.json")
        _, bf16 = plan(binary, [llama3, "--tp", "8", "--pp", "2", "--json"] + cluster)
        _, fp8 = plan(binary, [llama3, "--tp", "8", "--pp", "2", "--dtype", "fp8", "--json"] + cluster)
        check(fp8["layouts"][0]["kv_capacity_tokens"] > bf16["layouts"][0]["kv_capacity_tokens"],
              "fp8 weights leave more room for the KV cache than bf16")

        # Ranking: every candidate; the recommended ones fit and come fastest first.
        r, out = plan(binary, [llama3, "--json"] + cluster)
        fitting = [l for l in out["layouts"] if l["fits"]]
        rec = out["recommended"]
        check(r.returncode == 0 and len(rec) == 3, f"three layouts recommended ({len(rec)})")
        check([(l["tp"], l["pp"]) for l in fitting[:3]] == [(x["tp"], x["pp"]) for x in rec],
              "the recommended layouts are the first fitting ones")
        times = [l["decode_ms_per_token"] for l in fitting]
        check(times == sorted(times), "fitting layouts are sorted by decode time")
        check(all(l["gpus"] <= 16 for l in out["layouts"]), "no candidate needs more than the cluster's 16 GPUs")
        check(not any(l["fits"] for l in out["layouts"] if l["tp"] * l["pp"] == 1),
              "70B in bf16 (141 GB) does not fit one 80 GiB GPU")
        check(rec[0]["tp"] == 8, "the fastest layout uses tp=8 (weights read in parallel by 8 GPUs)")

        # Fits nowhere: exit 3 and the advice.
        r = subprocess.run([binary, "plan", llama3, "--nodes", "1", "--gpus-per-node", "1"], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 3 and "no layout fits" in r.stdout, f"one GPU: no layout fits, exit 3 ({r.returncode})")
        # An impossible tp is reported, not planned.
        r, out = plan(binary, [llama3, "--tp", "3", "--pp", "1", "--json"] + cluster)
        check(out is not None and not out["layouts"][0]["valid"] and "64 attention heads" in
              out["layouts"][0]["invalid_reason"], "tp=3 is invalid for 64 heads")
        r = subprocess.run([binary, "plan", "no-such-model"], capture_output=True, text=True, timeout=60)
        check(r.returncode == 1 and "presets:" in r.stderr, "an unknown model names the presets")

    # A preset gives the same plan as the published config.json it mirrors (Llama-3-70B).
    r, out = plan(binary, ["llama3-70b", "--tp", "8", "--pp", "2", "--json"] + cluster)
    check(out is not None and out["layouts"][0]["kv_capacity_tokens"] == bf16["layouts"][0]["kv_capacity_tokens"],
          "preset llama3-70b plans like Meta-Llama-3-70B's config.json")
    if default_model and os.path.isfile(default_model):
        r, out = plan(binary, [default_model, "--nodes", "1", "--gpus-per-node", "6", "--json"])
        check(r.returncode == 0 and out["model"]["num_layers"] == 30, "a GGUF file is read for its shapes")
    if failures:
        print(f"FAIL: {len(failures)} check(s)")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
