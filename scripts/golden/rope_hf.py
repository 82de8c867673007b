#!/usr/bin/env python3
"""Golden data for Tessera's CPU RoPE kernel, computed by Hugging Face transformers' LlamaRotaryEmbedding and
apply_rotary_pos_emb (float32 on the CPU), i.e. exactly what the PyTorch reference forward pass uses.

Run with the project venv (needs torch + transformers; CI does not run it, it reads only the fixture):

    .venv/bin/python scripts/golden/rope_hf.py [--out tests/fixtures/rope/hf_rope.json]

For each configuration (default, linear and llama3 scaling) the fixture holds, as float32 bit patterns:
inv_freq [head_dim / 2]; cos and sin [positions, head_dim / 2] (HF's cos/sin are cat(freqs, freqs), so the
first half is all there is); and one q [heads, head_dim] and k [kv_heads, head_dim] per position before and
after apply_rotary_pos_emb (HF's rotate-half layout). Deterministic: re-running reproduces the same file.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

REPO = Path(__file__).resolve().parents[2]
POSITIONS = [0, 1, 7, 100, 2047, 8191, 32767]
HEADS, KV_HEADS = 2, 1

CONFIGS = [
    # SmolLM2-135M: theta 100000, head_dim 64.
    {"name": "default", "head_dim": 64, "rope_parameters": {"rope_type": "default", "rope_theta": 100000.0}},
    {"name": "linear", "head_dim": 64,
     "rope_parameters": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}},
    # Llama 3.1.
    {"name": "llama3", "head_dim": 128,
     "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
]


def bits(t: torch.Tensor) -> list[int]:
    return t.detach().to(torch.float32).contiguous().numpy().view(np.uint32).reshape(-1).tolist()


def make_case(spec: dict, seed: int) -> dict:
    head_dim = spec["head_dim"]
    config = LlamaConfig(hidden_size=head_dim * HEADS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                         head_dim=head_dim, max_position_embeddings=max(POSITIONS) + 1,
                         rope_parameters=dict(spec["rope_parameters"]))
    rope = LlamaRotaryEmbedding(config)
    generator = torch.Generator().manual_seed(seed)
    n = len(POSITIONS)
    # HF layout: q [batch, heads, seq, head_dim].
    q = torch.rand(1, HEADS, n, head_dim, generator=generator) * 2 - 1
    k = torch.rand(1, KV_HEADS, n, head_dim, generator=generator) * 2 - 1
    position_ids = torch.tensor([POSITIONS])
    cos, sin = rope(q, position_ids)
    q_out, k_out = apply_rotary_pos_emb(q, k, cos, sin)
    half = head_dim // 2
    rp = spec["rope_parameters"]
    # Tessera's layout: [tokens, heads, head_dim].
    return {
        "name": spec["name"], "head_dim": head_dim, "heads": HEADS, "kv_heads": KV_HEADS,
        "rope_type": rp["rope_type"], "theta": rp["rope_theta"], "factor": rp.get("factor", 1.0),
        "low_freq_factor": rp.get("low_freq_factor", 1.0), "high_freq_factor": rp.get("high_freq_factor", 4.0),
        "original_max_position_embeddings": rp.get("original_max_position_embeddings", 8192),
        "positions": POSITIONS,
        "inv_freq": bits(rope.inv_freq),
        "cos": bits(cos[0, :, :half]), "sin": bits(sin[0, :, :half]),
        "q": bits(q[0].transpose(0, 1)), "k": bits(k[0].transpose(0, 1)),
        "q_rotated": bits(q_out[0].transpose(0, 1)), "k_rotated": bits(k_out[0].transpose(0, 1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests/fixtures/rope/hf_rope.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = [make_case(spec, seed) for seed, spec in enumerate(CONFIGS)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"generator": "scripts/golden/rope_hf.py", "torch": torch.__version__,
                                    "cases": cases}, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
