#!/usr/bin/env bash
# Usage: cluster/mpirun-local.sh NP tessera-args...
# Runs the tessera binary with NP ranks on this machine.
set -euo pipefail
np="$1"; shift
root="$(cd "$(dirname "$0")/.." && pwd)"
flags=(--oversubscribe)
[[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)
exec mpirun "${flags[@]}" -np "$np" "${TESSERA_BIN:-$root/build/launcher/tessera}" "$@"
