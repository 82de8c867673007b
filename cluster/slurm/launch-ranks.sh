#!/usr/bin/env bash
# Starts the ranks of one Tessera job inside a Slurm allocation and stays in front of them: prints where rank 0
# runs (and, for `serve`, the URL it listens at) and the exact command, forwards drain signals to the ranks, and
# exits with the ranks' status so that a failed rank makes the job FAILED, not COMPLETED.
#
# Usage (from an sbatch script, which `exec`s it so that `--signal=B:USR1@60` reaches this shell):
#   launch-ranks.sh mpirun|srun SUBCOMMAND [ARGS...]     e.g. launch-ranks.sh srun generate --config c.yaml
# Environment:
#   TESSERA_HOME         an unpacked bundle (its env.sh is sourced) or a checkout holding cluster/slurm/
#   TESSERA_BIN          the tessera binary (default: `tessera` on PATH, else $TESSERA_HOME/bin/tessera)
#   TESSERA_ENV_FILE     a file sourced first (cluster/env/*.env: NCCL/UCX settings)
#   TESSERA_PORT         port of `tessera serve` when ARGS do not name one (default 8000)
#   TESSERA_LAUNCH_ARGS  extra arguments for mpirun or srun (word-split)
set -uo pipefail

launcher="${1:-}"
shift || true
if [[ "$launcher" != mpirun && "$launcher" != srun ]] || (($# == 0)); then
  echo "launch-ranks: usage: launch-ranks.sh mpirun|srun SUBCOMMAND [ARGS...]" >&2
  exit 2
fi
# A bundle (cluster/bundle/) brings its own Open MPI: its env.sh puts it first on PATH and LD_LIBRARY_PATH.
if [[ -n "${TESSERA_HOME:-}" && -f "$TESSERA_HOME/env.sh" ]]; then
  # shellcheck source=/dev/null
  source "$TESSERA_HOME/env.sh"
fi
if [[ -n "${TESSERA_ENV_FILE:-}" ]]; then
  # shellcheck source=/dev/null
  source "$TESSERA_ENV_FILE" || { echo "launch-ranks: cannot source TESSERA_ENV_FILE=$TESSERA_ENV_FILE" >&2; exit 2; }
fi

bin="${TESSERA_BIN:-}"
if [[ -z "$bin" ]]; then
  bin="$(command -v tessera || true)"
  [[ -z "$bin" && -n "${TESSERA_HOME:-}" ]] && bin="$TESSERA_HOME/bin/tessera"
fi
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "launch-ranks: no tessera binary: set TESSERA_BIN or put tessera on PATH (got '${bin}')" >&2
  exit 2
fi

# Rank 0 is the first task of the first node of the allocation, with both launchers' default (block) mapping.
if [[ -n "${SLURM_JOB_NODELIST:-}" ]]; then
  rank0_host="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"
else
  rank0_host="$(hostname)"
fi
subcommand="$1"
args=("$@")
if [[ "$subcommand" == serve ]]; then
  port="${TESSERA_PORT:-8000}"
  has_port=0
  for a in "${args[@]}"; do [[ "$a" == --port || "$a" == --port=* ]] && has_port=1; done
  # Listen on every interface of rank 0's node so that the gateway can reach it.
  ((has_port)) || args+=(--host 0.0.0.0 --port "$port")
  for ((i = 0; i < ${#args[@]}; i++)); do [[ "${args[i]}" == --port ]] && port="${args[i + 1]:-$port}"; done
  for a in "${args[@]}"; do [[ "$a" == --port=* ]] && port="${a#--port=}"; done
  echo "tessera: rank 0 runs on ${rank0_host}; the API listens at http://${rank0_host}:${port}"
else
  echo "tessera: rank 0 runs on ${rank0_host}"
fi

# shellcheck disable=SC2206
extra=(${TESSERA_LAUNCH_ARGS:-})
if [[ "$launcher" == mpirun ]]; then
  # mpirun reads the allocation (nodes, tasks) from Slurm by itself. --bind-to none: the CPU backend's threads
  # (and a GPU rank's host threads) must not be pinned to one core each.
  cmd=(mpirun --bind-to none)
  # The job's task count is the world size: without -np, mpirun fills every slot of the allocation, which is
  # more than --ntasks when --ntasks-per-node (or a whole-node allocation) gives the nodes more.
  [[ -n "${SLURM_NTASKS:-}" ]] && cmd+=(-np "$SLURM_NTASKS")
  [[ $(id -u) -eq 0 ]] && cmd+=(--allow-run-as-root)
else
  # PMIx is what Debian's and most sites' Open MPI are built with (pmi2 is not); a rank that dies ends the step.
  cmd=(srun --mpi=pmix --kill-on-bad-exit=1)
fi
cmd+=("${extra[@]}" "$bin" "${args[@]}")
echo "tessera: command: ${cmd[*]}"

child=""
forward() {
  echo "tessera: received SIG$1: forwarding it to the ranks (drain)"
  [[ -n "$child" ]] && kill -s "$1" "$child" 2>/dev/null
}
trap 'forward USR1' USR1
trap 'forward USR2' USR2
trap 'forward TERM' TERM
trap 'forward INT' INT

"${cmd[@]}" &
child=$!
# A trapped signal interrupts `wait` while the ranks still run: wait again until the launcher is gone, then ask
# bash once more for its exit status (bash keeps the status of a background job it has reaped).
while kill -0 "$child" 2>/dev/null; do
  wait "$child"
done
wait "$child"
status=$?
echo "tessera: ranks exited with status ${status}"
exit "$status"
