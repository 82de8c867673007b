#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_step_plan.cpp: encodings of a few real step plans, in the wire format of
parallel/step_plan.cpp (little-endian; vectors are a u32 count and the elements). Run from the repository root."""
import os
import struct

MAGIC, VERSION = 0x54505350, 2


def vec(fmt, values):
    return struct.pack("<I", len(values)) + b"".join(struct.pack("<" + fmt, v) for v in values)


def sequence(seq_id, start, tokens, blocks, sample=True, temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, seed=0,
             rep=1.0, freq=0.0, pres=0.0, prompt_length=0, logprobs=-1, prompt_logprobs=-1, reset=False,
             prefix=(), targets=()):
    return (struct.pack("<QiBfiffQfffibbB", seq_id, start, int(sample), temperature, top_k, top_p, min_p, seed, rep,
                        freq, pres, prompt_length, logprobs, prompt_logprobs, int(reset))
            + vec("i", tokens) + vec("i", blocks) + vec("i", prefix) + vec("i", targets))


def plan(step, sequences=(), finished=(), shutdown=False, heartbeat=False):
    flags = (1 if shutdown else 0) | (2 if heartbeat else 0)
    return (struct.pack("<IIQB", MAGIC, VERSION, step, flags) + vec("Q", finished)
            + struct.pack("<I", len(sequences)) + b"".join(sequences))


seeds = {
    "heartbeat": plan(7, heartbeat=True),
    "shutdown": plan(99, finished=[1, 2, 3], shutdown=True),
    "prefill": plan(1, [sequence(1, 0, list(range(1, 33)), [0, 1], sample=False)]),
    "decode_batch": plan(2, [sequence(i, 40 + i, [100 + i], [i, 8 + i], temperature=0.7, top_k=40, top_p=0.9,
                                      seed=1234 + i) for i in range(4)], finished=[9]),
    "penalized": plan(3, [sequence(5, 16, [7], [2], rep=1.2, freq=0.5, pres=0.5, prompt_length=12, reset=True,
                                   prefix=list(range(16)), logprobs=5)]),
    "prompt_logprobs": plan(4, [sequence(6, 0, [1, 2, 3, 4], [3], prompt_logprobs=2, targets=[2, 3, 4])]),
}
out = "tests/fuzz/corpus/fuzz_step_plan"
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(data)
