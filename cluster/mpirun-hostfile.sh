#!/usr/bin/env bash
# Several nodes without Slurm: Open MPI's mpirun with a hostfile (see hostfile.example), over ssh by default.
# Usage: cluster/mpirun-hostfile.sh HOSTFILE NP SUBCOMMAND [ARGS...]
#   cluster/mpirun-hostfile.sh cluster/hostfile.example 16 serve --config configs/llama3-70b-tp8-pp2.yaml
# Ranks fill each host's slots in order (rank 0 on the first host), so tp groups stay inside a node when slots
# equal the GPUs per node and tp divides them. Prints where rank 0 runs and the command; exits with mpirun's status.
# Environment:
#   TESSERA_BIN          tessera binary, the same path on every host (default: tessera on PATH, else build/)
#   TESSERA_ENV_FILE     sourced first and its OMPI_/UCX_/NCCL_ variables exported to every rank (cluster/env/*.env)
#   TESSERA_MPIRUN_ARGS  extra mpirun arguments (word-split), e.g. "--mca btl_tcp_if_include 10.0.0.0/24"
set -euo pipefail
if (($# < 3)); then
  echo "usage: mpirun-hostfile.sh HOSTFILE NP SUBCOMMAND [ARGS...]" >&2
  exit 2
fi
hostfile="$1"; np="$2"; shift 2
[[ -r "$hostfile" ]] || { echo "mpirun-hostfile: cannot read hostfile '$hostfile'" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${TESSERA_BIN:-$(command -v tessera || echo "$root/build/launcher/tessera")}"

flags=(--hostfile "$hostfile" -np "$np" --bind-to none)
# mpirun must notice a host that is cut off, or it waits for that host's daemon forever after the ranks are gone
# (the rank watchdog ends the ranks; mpirun's own link to each daemon is TCP, which never times out while idle).
# Keepalive probes on that link declare a silent daemon lost after about 3 s (1 s idle + 2 probes 1 s apart), before
# the ranks' own peer timeout (5 s) ends them, so that mpirun still hears of every exit:
# mpirun then ends the job with a non-zero status. docs/RELIABILITY.md, e2e.serve_link_cut.
flags+=(--mca oob_tcp_keepalive_time 1 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 2)
[[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)
if [[ -n "${TESSERA_ENV_FILE:-}" ]]; then
  # shellcheck source=/dev/null
  source "$TESSERA_ENV_FILE"
  # mpirun passes OMPI_MCA_* to remote ranks itself; UCX_* and NCCL_* must be named with -x.
  while IFS='=' read -r name _; do
    [[ "$name" == UCX_* || "$name" == NCCL_* ]] && flags+=(-x "$name")
  done < <(env)
fi
# shellcheck disable=SC2206
flags+=(${TESSERA_MPIRUN_ARGS:-})
rank0_host="$(grep -v '^\s*#' "$hostfile" | awk 'NF {print $1; exit}')"
echo "tessera: rank 0 runs on ${rank0_host}"
echo "tessera: command: mpirun ${flags[*]} $bin $*"
exec mpirun "${flags[@]}" "$bin" "$@"
