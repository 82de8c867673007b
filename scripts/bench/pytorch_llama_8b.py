#!/usr/bin/env python3
"""PyTorch side by side with `tessera bench --backend cuda --model dummy:llama3-8b`: the same shapes (Llama 3 8B), random
bf16 weights, one GPU, eager PyTorch (optionally torch.compile), measured the same way:

- prefill: one sequence of --prefill-len tokens (2048) in one forward pass;
- decode: batch 1 and 64 (--batches), a static KV cache of --context tokens per sequence (random prompt, not
  timed: the cache is read, whatever it holds), then --steps single-token steps (attention over the whole static
  cache, positions beyond the current one masked); the per-step latency, the aggregate tokens/s, and the bandwidth the latency implies
  for the bytes a step must read (every weight once + each sequence's K and V: the formula `tessera bench` uses).

No transformers, no download: a minimal Llama (RMSNorm, RoPE with Llama 3 scaling, GQA attention through
torch.nn.functional.scaled_dot_product_attention, SwiGLU) written here, so the comparison is the engine, not a
checkpoint. Weights are N(0, 1/fan_in); the outputs are noise, as with Tessera's dummy weights.

    python scripts/bench/pytorch_llama_8b.py                       # Llama 3 8B on cuda:0
    python scripts/bench/pytorch_llama_8b.py --compile             # + torch.compile(mode="reduce-overhead")
    python scripts/bench/pytorch_llama_8b.py --preset tiny --device cpu --steps 4 --prefill-len 32   # smoke test

Prints one JSON object (also written to --json).
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

PRESETS = {
    # name: layers, hidden, heads, kv_heads, ffn, vocab, rope theta
    "llama3-8b": (32, 4096, 32, 8, 14336, 128256, 500000.0),
    "tiny": (4, 128, 4, 2, 256, 512, 10000.0),
}


class Llama:
    def __init__(self, preset: str, device: str, dtype: torch.dtype, max_batch: int, max_len: int):
        self.layers, self.hidden, self.heads, self.kv_heads, self.ffn, self.vocab, theta = PRESETS[preset]
        self.hd = self.hidden // self.heads
        self.device, self.dtype = device, dtype
        g = torch.Generator(device=device).manual_seed(0)

        def weight(rows, cols):
            return (torch.randn(rows, cols, device=device, dtype=dtype, generator=g) / math.sqrt(cols))

        q, kv = self.heads * self.hd, self.kv_heads * self.hd
        self.embedding = weight(self.vocab, self.hidden)
        self.lm_head = weight(self.vocab, self.hidden)
        self.final_norm = torch.ones(self.hidden, device=device, dtype=dtype)
        self.w = []
        for _ in range(self.layers):
            self.w.append(dict(attn_norm=torch.ones(self.hidden, device=device, dtype=dtype),
                               qkv=weight(q + 2 * kv, self.hidden), o=weight(self.hidden, q),
                               ffn_norm=torch.ones(self.hidden, device=device, dtype=dtype),
                               gate_up=weight(2 * self.ffn, self.hidden), down=weight(self.hidden, self.ffn)))
        # Static KV cache [layers][batch, kv_heads, max_len, head_dim].
        shape = (max_batch, self.kv_heads, max_len, self.hd)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(self.layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(self.layers)]
        self.inv_freq = self._llama3_inv_freq(theta) if preset == "llama3-8b" else \
            1.0 / theta ** (torch.arange(0, self.hd, 2, device=device, dtype=torch.float32) / self.hd)

    def _llama3_inv_freq(self, theta, factor=8.0, low=1.0, high=4.0, original=8192):
        inv = 1.0 / theta ** (torch.arange(0, self.hd, 2, device=self.device, dtype=torch.float32) / self.hd)
        wavelen = 2 * math.pi / inv
        smooth = (original / wavelen - low) / (high - low)
        scaled = torch.where(wavelen > original / low, inv / factor, inv)
        mid = (wavelen <= original / low) & (wavelen >= original / high)
        return torch.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)

    def rope(self, x, positions):  # x [B, heads, T, hd], positions [B, T]
        angles = positions[:, None, :, None].float() * self.inv_freq
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        cos, sin = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    @staticmethod
    def rms_norm(x, weight, eps=1e-5):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * weight

    def _layers(self, h, positions, attend):
        b, t, _ = h.shape
        q_w, kv_w = self.heads * self.hd, self.kv_heads * self.hd
        for l, w in enumerate(self.w):
            x = self.rms_norm(h, w["attn_norm"]) @ w["qkv"].T
            q, k, v = x.split([q_w, kv_w, kv_w], -1)
            q = self.rope(q.view(b, t, self.heads, self.hd).transpose(1, 2), positions)
            k = self.rope(k.view(b, t, self.kv_heads, self.hd).transpose(1, 2), positions)
            attn = attend(l, q, k, v.view(b, t, self.kv_heads, self.hd).transpose(1, 2))
            h = h + attn.transpose(1, 2).reshape(b, t, q_w) @ w["o"].T
            gate, up = (self.rms_norm(h, w["ffn_norm"]) @ w["gate_up"].T).split([self.ffn, self.ffn], -1)
            h = h + (F.silu(gate) * up) @ w["down"].T
        return self.rms_norm(h[:, -1], self.final_norm) @ self.lm_head.T

    def prefill(self, ids):
        """ids [B, T] from position 0 (causal); fills the cache; returns the last row's logits [B, vocab]."""
        b, t = ids.shape
        positions = torch.arange(t, device=self.device).expand(b, t)

        def attend(l, q, k, v):
            self.k[l][:b, :, :t] = k
            self.v[l][:b, :, :t] = v
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

        return self._layers(self.embedding[ids], positions, attend)

    def decode(self, ids, position):
        """ids [B, 1] at `position` (a 0-dim device tensor, so that a compiled step serves every position): K/V
        written into the static cache, attention over the whole cache with the positions beyond masked."""
        b = ids.shape[0]
        positions = position.view(1, 1).expand(b, 1)
        visible = (torch.arange(self.k[0].shape[2], device=self.device) <= position).view(1, 1, 1, -1)

        def attend(l, q, k, v):
            keys, values = self.k[l][:b], self.v[l][:b]
            keys.index_copy_(2, position.view(1), k)
            values.index_copy_(2, position.view(1), v)
            return F.scaled_dot_product_attention(q, keys, values, attn_mask=visible, enable_gqa=True)

        return self._layers(self.embedding[ids], positions, attend)

    def step_bytes(self, batch: int, context: float) -> float:
        q, kv = self.heads * self.hd, self.kv_heads * self.hd
        per_layer = self.hidden * (q + 2 * kv) + q * self.hidden + 3 * self.hidden * self.ffn
        weights = (per_layer * self.layers + self.vocab * self.hidden) * 2 + (2 * self.layers + 1) * self.hidden * 2
        return weights + batch * self.hidden * 2 + batch * context * self.layers * 2 * kv * 2


def synchronize(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="llama3-8b", choices=sorted(PRESETS))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--context", type=int, default=512, help="tokens already in each sequence's KV cache")
    ap.add_argument("--steps", type=int, default=64, help="decode steps measured (after 4 warm-up steps)")
    ap.add_argument("--prefill-len", type=int, default=2048)
    ap.add_argument("--compile", action="store_true", help="torch.compile(mode='reduce-overhead') the decode step")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)
    max_len = max(args.context + args.steps + 8, args.prefill_len)
    model = Llama(args.preset, args.device, torch.bfloat16, max(batches), max_len)
    report = {"preset": args.preset, "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else
              args.device, "torch": torch.__version__, "compile": args.compile, "decode": []}

    with torch.inference_mode():
        ids = torch.randint(0, model.vocab, (1, args.prefill_len), device=args.device)
        model.prefill(ids)  # warm-up
        synchronize(args.device)
        t0 = time.perf_counter()
        model.prefill(ids)
        synchronize(args.device)
        seconds = time.perf_counter() - t0
        report["prefill"] = {"tokens": args.prefill_len, "seconds": seconds, "tokens_per_s": args.prefill_len / seconds}

        step = torch.compile(model.decode, mode="reduce-overhead", dynamic=False) if args.compile else model.decode
        position = lambda p: torch.tensor(p, device=args.device)  # noqa: E731
        for b in batches:
            tokens = torch.randint(0, model.vocab, (b, 1), device=args.device)
            for i in range(4):  # warm-up (and compile / graph capture)
                step(tokens, position(args.context + i))
            synchronize(args.device)
            t0 = time.perf_counter()
            for i in range(args.steps):
                logits = step(tokens, position(args.context + 4 + i))
                tokens = logits.argmax(-1, keepdim=True)
            synchronize(args.device)
            step_s = (time.perf_counter() - t0) / args.steps
            step_bytes = model.step_bytes(b, args.context + 4 + args.steps / 2)
            report["decode"].append({"batch": b, "context": args.context, "step_ms": step_s * 1e3,
                                     "tokens_per_s": b / step_s, "bytes_per_step": step_bytes,
                                     "achieved_gb_per_s": step_bytes / step_s / 1e9})
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
