#!/usr/bin/env python3
"""Seed corpus of tests/fuzz/fuzz_safetensors.cpp: a few tiny safetensors images (valid and not).

    .venv/bin/python scripts/golden/safetensors_fuzz_corpus.py   (needs only the standard library)

Seeds are *.bin so that the *.safetensors ignore rule never hides them. dtypes.bin is a copy of
tests/fixtures/tiny-models/dtypes.safetensors (written by the safetensors package in tiny_models.py).
"""
import json
import shutil
import struct
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests/fuzz/corpus/fuzz_safetensors"


def write(name, header, data):
    text = json.dumps(header, separators=(",", ":")).encode()
    (OUT / name).write_bytes(struct.pack("<Q", len(text)) + text + data)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "tests/fixtures/tiny-models/dtypes.safetensors", OUT / "dtypes.bin")
    write("empty.bin", {}, b"")
    write("metadata_and_matrix.bin",
          {"__metadata__": {"format": "pt"}, "w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
           "b": {"dtype": "F16", "shape": [3], "data_offsets": [12, 18]}}, bytes(range(18)))
    write("overlap.bin",  # invalid: b starts inside a
          {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12))


if __name__ == "__main__":
    main()
