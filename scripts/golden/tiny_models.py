#!/usr/bin/env python3
"""Tiny Hugging Face reference models and their golden outputs, for Tessera's model-loading and forward tests.

Run with the project venv (needs torch + transformers; CI does not, it reads only the committed fixtures):

    .venv/bin/python scripts/golden/tiny_models.py [--out tests/fixtures/tiny-models]

Everything is deterministic (fixed seeds, f32, eager attention, one CPU thread), so re-running reproduces the
same files up to torch-version float noise.

Written under <out>/:

  tiny-llama-gqa/            LlamaForCausalLM, hidden 48, 4 layers, 6 heads, 1 KV head (heads share one KV head,
                             so every tensor-parallel size replicates it), head_dim 8, FFN 96, vocab 384,
                             llama3 rope scaling (factor 8, low 1, high 4, original 64: with head_dim 8 and
                             theta 10000 the four frequencies fall in all three llama3 regimes), untied lm_head.
  tiny-llama-gqa-sharded/    the same weights saved as model.safetensors.index.json + 2 shards (no golden.json:
                             its outputs are tiny-llama-gqa's).
  tiny-qwen2/                Qwen2ForCausalLM, hidden 48, 4 layers, 6 heads, 3 KV heads, head_dim 8, FFN 96,
                             vocab 384, random non-zero q/k/v biases (o_proj has none), tied embeddings.
  dtypes.safetensors         one tensor per dtype (F32, F16, BF16, F8_E4M3, I32, I64, BOOL) written by the
  dtypes.json                `safetensors` package, with the f32 values torch decodes them to (floats only).

Each model folder holds config.json, generation_config.json, model.safetensors (or the index + shards) in f32, and
golden.json (not for the sharded copy). Weights are re-initialised with larger spreads than HF's 0.02 default
(norm weights 1 + 0.2 N(0,1), biases 0.2 N(0,1)) so logits are far apart and a wrong norm, bias or rope shows up.

golden.json schema:
  {
    "model": "tiny-llama-gqa",
    "vocab_size": 384,
    "new_tokens": 16,
    "cases": [                                  # 3 prompts
      {
        "prompt": [int, ...],                   # 5..12 token ids < vocab_size, no BOS added
        "generated": [int, ...],                # 16 greedy tokens (argmax; EOS does not stop generation)
        "logits": [[float, ...], ...],          # 17 rows of vocab_size f32 logits: row 0 at the last prompt
                                                # position (it chooses generated[0]); row i (1..16) at the
                                                # position of generated[i-1] (row 16 follows the last token)
        "min_top2_margin": float                # smallest top1 - top2 logit gap over rows 0..15: greedy
                                                # choices are stable under errors smaller than this
      }, ...
    ],
    "weights": {                                # every tensor of the checkpoint, by its HF name
      "model.layers.0.self_attn.q_proj.weight": {
        "shape": [int, ...],
        "sum": float,                           # f64 sum of all elements
        "first": [float, ...]                   # the first 4 elements in row-major order
      }, ...
    }
  }
Logits come from one full (no cache) forward over prompt + generated tokens; the script checks that
model.generate(do_sample=False) produces the same tokens and logits.
"""
import argparse
import json
import math
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

NEW_TOKENS = 16
VOCAB = 384
PROMPTS = [
    [1, 17, 250, 3, 99, 42],
    [1, 300, 301, 5, 7, 11, 13, 200, 64, 128, 255],
    [383, 0, 12, 77, 190],
]


def llama_model():
    config = LlamaConfig(
        hidden_size=48, num_hidden_layers=4, num_attention_heads=6, num_key_value_heads=1, head_dim=8,
        intermediate_size=96, vocab_size=VOCAB, max_position_embeddings=256, rms_norm_eps=1e-5,
        rope_scaling={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        architectures=["LlamaForCausalLM"], attn_implementation="eager")
    return LlamaForCausalLM(config)


def qwen2_model():
    config = Qwen2Config(
        hidden_size=48, num_hidden_layers=4, num_attention_heads=6, num_key_value_heads=3, head_dim=8,
        intermediate_size=96, vocab_size=VOCAB, max_position_embeddings=512, rms_norm_eps=1e-6,
        rope_theta=1000000.0, tie_word_embeddings=True, bos_token_id=None, eos_token_id=[4, 5],
        use_sliding_window=False, architectures=["Qwen2ForCausalLM"], attn_implementation="eager")
    return Qwen2ForCausalLM(config)


def reinitialise(model, seed, embedding_scale=1.0):
    """Spreads that keep activations O(1) and logits several units apart."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.2 * noise)
            elif name.endswith(".bias"):
                parameter.copy_(0.2 * noise)
            elif "embed_tokens" in name:
                parameter.copy_(embedding_scale * noise)
            else:  # linear weights [out, in]: unit-variance outputs for unit-variance inputs
                parameter.copy_(noise / math.sqrt(parameter.shape[1]))
        # Residual updates larger than the token embedding: with tied embeddings the embedding of the last
        # token would otherwise dominate the logits and greedy decoding would repeat it forever.
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(3.0)
            layer.mlp.down_proj.weight.mul_(3.0)
        if not model.config.tie_word_embeddings:  # a sharper head: logits spread over several units
            model.lm_head.weight.mul_(3.0)


def greedy_case(model, prompt):
    tokens = list(prompt)
    for _ in range(NEW_TOKENS):
        with torch.no_grad():
            logits = model(torch.tensor([tokens])).logits[0, -1]
        tokens.append(int(torch.argmax(logits)))
    with torch.no_grad():
        all_logits = model(torch.tensor([tokens])).logits[0].float()
    rows = all_logits[len(prompt) - 1:]
    assert rows.shape[0] == NEW_TOKENS + 1
    generated = tokens[len(prompt):]

    # Cross-check with transformers' own generate (KV cache path).
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                         eos_token_id=None, pad_token_id=0, output_logits=True, return_dict_in_generate=True)
    assert out.sequences[0, len(prompt):].tolist() == generated, "generate disagrees with the full forward"
    step_logits = torch.stack([l[0] for l in out.logits])
    assert torch.allclose(step_logits, rows[:NEW_TOKENS], atol=1e-4), "generate logits differ"

    top2 = torch.topk(rows[:NEW_TOKENS], 2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    return {
        "prompt": prompt,
        "generated": generated,
        # 8 significant digits: within an f32 ulp, half the size of repr.
        "logits": [[float(f"{v:.8g}") for v in row] for row in rows.numpy()],
        "min_top2_margin": margin,
    }


def write_golden(model, name, folder):
    cases = [greedy_case(model, prompt) for prompt in PROMPTS]
    weights = {
        tensor_name: {"shape": list(tensor.shape), "sum": float(tensor.double().sum()),
                      "first": [float(v) for v in tensor.flatten()[:4]]}
        for tensor_name, tensor in model.state_dict().items()
        if not (tensor_name == "lm_head.weight" and model.config.tie_word_embeddings)
    }
    golden = {"model": name, "vocab_size": VOCAB, "new_tokens": NEW_TOKENS, "cases": cases, "weights": weights}
    text = json.dumps(golden, separators=(",", ":"))
    (folder / "golden.json").write_text(text + "\n")
    print(f"{name}: margins {[round(c['min_top2_margin'], 4) for c in cases]}, "
          f"generated {[c['generated'][:6] for c in cases]}")


def save_model(model, folder, generation_eos, max_shard_size=None):
    if folder.exists():
        shutil.rmtree(folder)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(folder, safe_serialization=True, **kwargs)
    GenerationConfig(bos_token_id=model.config.bos_token_id, eos_token_id=generation_eos).save_pretrained(folder)


def write_dtypes(out):
    generator = torch.Generator().manual_seed(7)
    base = torch.randn(3, 5, generator=generator) * 4.0
    base[0, 0], base[0, 1], base[0, 2] = 0.0, -0.0, 1.0e-6  # zero, negative zero, f16 subnormal
    tensors = {
        "f32": base.clone(),
        "f16": base.to(torch.float16),
        "bf16": base.to(torch.bfloat16),
        "f8_e4m3": base.clamp(-448, 448).to(torch.float8_e4m3fn),
        "i32": torch.arange(-6, 6, dtype=torch.int32).reshape(4, 3),
        "i64": torch.arange(4, dtype=torch.int64),
        "bool": torch.tensor([True, False, True]),
    }
    save_file(tensors, str(out / "dtypes.safetensors"), metadata={"note": "tessera dtype fixture"})
    expected = {name: {"shape": list(t.shape), "values": [float(v) for v in t.float().flatten()]}
                for name, t in tensors.items() if t.is_floating_point()}
    (out / "dtypes.json").write_text(json.dumps(expected, indent=1) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    repo = Path(__file__).resolve().parents[2]
    parser.add_argument("--out", type=Path, default=repo / "tests/fixtures/tiny-models")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(0)

    llama = llama_model().float().eval()
    reinitialise(llama, seed=1)
    save_model(llama, args.out / "tiny-llama-gqa", generation_eos=[2, 3])
    save_model(llama, args.out / "tiny-llama-gqa-sharded", generation_eos=[2, 3], max_shard_size="250KB")
    write_golden(llama, "tiny-llama-gqa", args.out / "tiny-llama-gqa")

    qwen = qwen2_model().float().eval()
    # Tied embeddings: a small embedding keeps the last token's own embedding from dominating its logits
    # (greedy decoding would repeat it forever); the layers see it through RMSNorm, so their scale is unchanged.
    reinitialise(qwen, seed=2, embedding_scale=0.25)
    save_model(qwen, args.out / "tiny-qwen2", generation_eos=[5])
    write_golden(qwen, "tiny-qwen2", args.out / "tiny-qwen2")

    write_dtypes(args.out)
    for path in sorted(args.out.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(args.out)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
