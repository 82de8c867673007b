#!/usr/bin/env python3
"""Seed corpus for tests/fuzz/fuzz_gguf.cpp: tiny valid GGUF images written by gguf-py's GGUFWriter (an
implementation independent of Tessera's), so the fuzzer starts from inputs that reach every parser branch.

    .venv/bin/python scripts/golden/gguf_fuzz_corpus.py [--out tests/fuzz/corpus/fuzz_gguf]

Files (deterministic, < 20 KB together):
  metadata_v3.gguf    every metadata value type incl. nested arrays and strings; F32, F16 and BF16 tensors
  quant_types.gguf    one row of every block type Tessera decodes (Q4_0 ... Q6_K), random bytes with finite scales
  tiny_llama.gguf     a complete 1-layer llama model with a byte-level BPE vocabulary (config, tokenizer and
                      weight-source paths)
  metadata_v2.gguf    metadata_v3 rewritten as GGUF version 2 with general.alignment 64
"""
from __future__ import annotations

import argparse
import struct
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

REPO = Path(__file__).resolve().parents[2]
FP16_FIELDS = {T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
               T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}


def write(writer: GGUFWriter) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.gguf"
        writer.path = path
        writer.write_header_to_file(path)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def quant_row(qtype: T, rng: np.random.Generator) -> np.ndarray:
    _, type_size = GGML_QUANT_SIZES[qtype]
    block = rng.integers(0, 256, size=type_size, dtype=np.uint8)
    for offset in FP16_FIELDS[qtype]:
        block[offset:offset + 2] = np.array([rng.uniform(-0.5, 0.5)], dtype=np.float16).view(np.uint8)
    return block.reshape(1, type_size)


def metadata_image(alignment: int | None = None) -> bytes:
    w = GGUFWriter(None, "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.25)
    w.add_bool("t.bool", True)
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -2**63)
    w.add_float64("t.f64", 1e300)
    w.add_string("t.str", "h\u00e9llo")
    w.add_array("t.strs", ["a", "", "ccc"])
    w.add_array("t.nested", [[1, 2], [3]])
    w.add_key_value("t.floats", [1.5, -2.0], V.ARRAY, sub_type=V.FLOAT32)
    w.add_tensor("f32", np.arange(8, dtype=np.float32).reshape(2, 4))
    w.add_tensor("f16", np.array([1.0, -0.5, 65504.0, 0.0], dtype=np.float16))
    bf16 = (np.array([1.0, -2.0, 3.5, 0.0], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor("bf16", bf16.view(np.uint8), raw_dtype=T.BF16)  # byte shape (8,) -> 4 elements
    return write(w)


def quant_image() -> bytes:
    rng = np.random.default_rng(7)
    w = GGUFWriter(None, "llama")
    for qtype in FP16_FIELDS:
        w.add_tensor(f"q.{qtype.name}", quant_row(qtype, rng), raw_dtype=qtype)
    return write(w)


def tiny_llama_image() -> bytes:
    rng = np.random.default_rng(11)
    hidden, heads, kv_heads, ffn, vocab = 32, 2, 1, 32, 4
    head_dim = hidden // heads
    w = GGUFWriter(None, "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(["a", "b", "ab", "<|endoftext|>"])
    w.add_token_types([1, 1, 1, 3])
    w.add_token_merges(["a b"])
    w.add_bos_token_id(3)
    w.add_eos_token_id(3)
    w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")

    def q8(rows: int, cols: int) -> np.ndarray:
        blocks = [quant_row(T.Q8_0, rng) for _ in range(rows * cols // 32)]
        return np.concatenate(blocks).reshape(rows, cols // 32 * 34)

    w.add_tensor("token_embd.weight", q8(vocab, hidden), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(hidden, dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight", q8(heads * head_dim, hidden), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.attn_k.weight", q8(kv_heads * head_dim, hidden), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.attn_v.weight", q8(kv_heads * head_dim, hidden), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.attn_output.weight", q8(hidden, heads * head_dim), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
    w.add_tensor("blk.0.ffn_gate.weight", q8(ffn, hidden), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.ffn_up.weight", q8(ffn, hidden), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.ffn_down.weight", q8(hidden, ffn), raw_dtype=T.Q8_0)
    w.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    return write(w)


def as_version_2(image: bytes) -> bytes:
    assert image[:4] == b"GGUF" and struct.unpack_from("<I", image, 4)[0] == 3
    return image[:4] + struct.pack("<I", 2) + image[8:]  # v2 and v3 share the layout (v3 adds big-endian files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "tests/fuzz/corpus/fuzz_gguf")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "metadata_v3.gguf": metadata_image(),
        "quant_types.gguf": quant_image(),
        "tiny_llama.gguf": tiny_llama_image(),
        "metadata_v2.gguf": as_version_2(metadata_image(alignment=64)),
    }
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    total = sum(len(d) for d in files.values())
    assert total < 20 * 1024, total
    print(f"wrote {len(files)} files, {total} bytes, to {args.out}")


if __name__ == "__main__":
    main()
