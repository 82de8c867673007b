#!/usr/bin/env bash
# Usage: cluster/mpirun-local.sh NP tessera-args...
# Runs the tessera binary with NP ranks on this machine.
set -euo pipefail
np="$1"; shift
root="$(cd "$(dirname "$0")/.." && pwd)"
# --bind-to none: Open MPI pins 1-2 ranks to one core each by default, which starves the CPU backend's threads.
flags=(--oversubscribe --bind-to none)
[[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)
exec mpirun "${flags[@]}" -np "$np" "${TESSERA_BIN:-$root/build/launcher/tessera}" "$@"
