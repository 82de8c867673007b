#!/usr/bin/env python3
"""Golden data for Tessera's GGUF dequantization, computed by gguf-py (the reference Python port of ggml's
dequantize_row_* functions).

Run with the project venv (needs numpy + gguf; CI does not run it, it reads only the committed fixtures):

    .venv/bin/python scripts/golden/gguf_dequant.py [--out tests/fixtures/gguf] [--model PATH]

Written under <out>/:

  dequant/<TYPE>.blocks   raw little-endian blocks of the type (seeded random bytes; every fp16 scale field is
                          replaced by a finite, moderate fp16 so no block decodes to inf or NaN)
  dequant/<TYPE>.f32      gguf-py's dequantization of those bytes, float32 little-endian
  dequant/manifest.json   {"types": [{"type": "Q4_K", "elements": 1024, "blocks": "...", "values": "..."}]}
  smollm2_tensors.json    for EVERY tensor of SmolLM2-135M-Instruct.Q4_1.gguf: name, type, GGUF dims, rows,
                          columns, sha256 of gguf-py's dequantized float32 bytes (row-major, rows x columns), and
                          the first 8 values of the first and the last row (as float32 bit patterns and floats).

Everything is deterministic: re-running reproduces the same files byte for byte.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = Path.home() / ".cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf"

# Byte offsets of the fp16 scale fields inside one block (ggml-common.h).
FP16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}
QUANT_BLOCKS = {T.Q4_0: 8, T.Q4_1: 8, T.Q5_0: 8, T.Q5_1: 8, T.Q8_0: 8,
                T.Q2_K: 3, T.Q3_K: 3, T.Q4_K: 3, T.Q5_K: 3, T.Q6_K: 3}


def float_blocks(qtype: T, rng: np.random.Generator) -> np.ndarray:
    """64 plain float values, including zeros of both signs, subnormals and infinities of the format."""
    values = rng.normal(0.0, 3.0, size=64).astype(np.float32)
    if qtype == T.F32:
        values[:6] = [0.0, -0.0, np.inf, -np.inf, 1e-40, -3.4e38]
        return values.view(np.uint8)
    if qtype == T.F16:
        halves = values.astype(np.float16)
        halves[:6] = [0.0, -0.0, np.inf, -np.inf, np.float16(6e-8), np.float16(-65504.0)]
        return halves.view(np.uint8)
    assert qtype == T.BF16
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)
    bits[:6] = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x0001, 0xFF7F]  # +-0, +-inf, smallest subnormal, -max
    return bits.view(np.uint8)


def quant_blocks(qtype: T, rng: np.random.Generator) -> np.ndarray:
    _, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = QUANT_BLOCKS[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for offset in FP16_FIELDS[qtype]:
        # Scales between -0.25 and 0.25 (both signs occur in real files for d/m of the legacy formats).
        scale = rng.uniform(-0.25, 0.25, size=n_blocks).astype(np.float16)
        blocks[:, offset:offset + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(-1)


def write_dequant_fixtures(out: Path) -> None:
    folder = out / "dequant"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    manifest = []
    for qtype in [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
                  T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]:
        raw = float_blocks(qtype, rng) if qtype in (T.F32, T.F16, T.BF16) else quant_blocks(qtype, rng)
        values = dequantize(raw, qtype).astype(np.float32, copy=False).reshape(-1)
        if qtype in (T.F32, T.F16, T.BF16):
            assert not np.isnan(values).any()
        else:
            assert np.isfinite(values).all(), qtype.name
        (folder / f"{qtype.name}.blocks").write_bytes(raw.tobytes())
        (folder / f"{qtype.name}.f32").write_bytes(values.astype("<f4").tobytes())
        manifest.append({"type": qtype.name, "elements": int(values.size),
                         "blocks": f"{qtype.name}.blocks", "values": f"{qtype.name}.f32"})
    (folder / "manifest.json").write_text(json.dumps({"generator": "scripts/golden/gguf_dequant.py",
                                                      "types": manifest}, indent=1) + "\n")


def first_values(row: np.ndarray) -> dict:
    head = np.ascontiguousarray(row[:8], dtype=np.float32)
    return {"bits": [int(b) for b in head.view(np.uint32)], "floats": [float(v) for v in head]}


def write_model_fixture(out: Path, model: Path) -> None:
    reader = GGUFReader(str(model))
    tensors = []
    for t in reader.tensors:
        dims = [int(d) for d in t.shape]  # GGUF order: dims[0] is the columns
        columns = dims[0]
        rows = int(np.prod(dims[1:])) if len(dims) > 1 else 1
        values = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False).reshape(rows, columns)
        values = np.ascontiguousarray(values).astype("<f4", copy=False)
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "dims": dims,
            "rows": rows,
            "columns": columns,
            "sha256": hashlib.sha256(values.tobytes()).hexdigest(),
            "first_row": first_values(values[0]),
            "last_row": first_values(values[-1]),
        })
    # One tensor per line keeps the file small and its diffs readable.
    lines = ",\n".join("  " + json.dumps(t, separators=(",", ":")) for t in tensors)
    text = (f'{{"generator": "scripts/golden/gguf_dequant.py", "model": {json.dumps(model.name)},\n'
            f' "tensors": [\n{lines}\n]}}\n')
    json.loads(text)
    (out / "smollm2_tensors.json").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "tests/fixtures/gguf")
    parser.add_argument("--model", type=Path, default=Path(os.environ.get("TESSERA_MODEL_PATH", DEFAULT_MODEL)))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_dequant_fixtures(args.out)
    write_model_fixture(args.out, args.model)


if __name__ == "__main__":
    main()
