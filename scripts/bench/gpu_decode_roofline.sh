#!/usr/bin/env bash
# Decode roofline of the CUDA backend on one GPU, for a session that has one (nothing here has been measured yet).
#
#   scripts/bench/gpu_decode_roofline.sh [BUILD_DIR]        (default build-gpu; configure with -DTESSERA_CUDA=ON)
#
# 1. Decode, batch 1 and 64, on dummy Llama 3 8B weights (bf16 on the device, no model file):
#      tessera bench --backend cuda --model dummy:llama3-8b --batch 1,64 --measure-bandwidth
#    --measure-bandwidth first times cudaMemcpy device-to-device of 1 GiB ((read + write) / time, best of 5): the
#    peak a memory-bound step can hope for. Each decode step reads every weight once plus each sequence's K and V
#    (bytes from the shapes); bytes / step latency against that peak is the roofline fraction.
# 2. The same batch-1 decode without CUDA graphs (launch overhead, for comparison).
# 3. Prefill: one 2048-token prompt in one step (--max-step-tokens 2048).
# Then a summary table from the JSON files. Environment: MODEL (default dummy:llama3-8b), OUT (default
# /tmp/tessera-gpu-bench), PROMPT_LEN / GEN_LEN of the decode runs (512 / 128), MPIRUN_FLAGS.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$REPO/build-gpu}"
TESSERA="$BUILD/launcher/tessera"
MODEL="${MODEL:-dummy:llama3-8b}"
OUT="${OUT:-/tmp/tessera-gpu-bench}"
PROMPT_LEN="${PROMPT_LEN:-512}"
GEN_LEN="${GEN_LEN:-128}"
MPIRUN=(mpirun -np 1 --bind-to none ${MPIRUN_FLAGS:-})
# Threads for loading: the dummy weights are generated and rounded to bf16 on the host (kernels/cpu/parallel_for).
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$(nproc)}"
if [[ "$(id -u)" == 0 ]]; then MPIRUN+=(--allow-run-as-root); fi

[[ -x "$TESSERA" ]] || { echo "no tessera binary at $TESSERA (build with -DTESSERA_CUDA=ON first)" >&2; exit 1; }
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv,noheader || true

echo "== decode, batch 1 and 64, CUDA graphs (prompt $PROMPT_LEN, $GEN_LEN new tokens)"
"${MPIRUN[@]}" "$TESSERA" bench --backend cuda --model "$MODEL" --batch 1,64 --prompt-len "$PROMPT_LEN" \
  --gen-len "$GEN_LEN" --measure-bandwidth --json "$OUT/decode.json"

echo "== decode, batch 1, no CUDA graphs"
"${MPIRUN[@]}" "$TESSERA" bench --backend cuda --model "$MODEL" --batch 1 --prompt-len "$PROMPT_LEN" \
  --gen-len "$GEN_LEN" --no-cuda-graphs --json "$OUT/decode_eager.json"

echo "== prefill, one prompt of 2048 tokens"
"${MPIRUN[@]}" "$TESSERA" bench --backend cuda --model "$MODEL" --batch 1 --prompt-len 2048 --gen-len 2 \
  --max-step-tokens 2048 --json "$OUT/prefill.json"

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
decode = json.load(open(os.path.join(out, "decode.json")))
eager = json.load(open(os.path.join(out, "decode_eager.json")))
prefill = json.load(open(os.path.join(out, "prefill.json")))
peak = decode.get("copy_bandwidth_gb_per_s", 0)
print(f"\nmodel {decode['model']}, copy bandwidth {peak:.0f} GB/s (read + write)")
print(f"{'run':<22}{'batch':>6}{'step ms':>10}{'tokens/s':>12}{'GB/s':>10}{'roofline':>10}")
for name, report in (("decode (graphs)", decode), ("decode (no graphs)", eager)):
    for r in report["results"]:
        frac = f"{100 * r['decode_achieved_gb_per_s'] / peak:.1f}%" if peak else "-"
        print(f"{name:<22}{r['batch']:>6}{r['decode_step_ms']:>10.3f}{r['decode_tokens_per_s']:>12.1f}"
              f"{r['decode_achieved_gb_per_s']:>10.1f}{frac:>10}")
p = prefill["results"][0]
print(f"prefill 2048 tokens: {p['prefill_seconds'] * 1e3:.1f} ms, {p['prefill_tokens_per_s']:.0f} tokens/s")
PY
