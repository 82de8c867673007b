#include "runtime/model/weight_source.h"

namespace tessera::runtime {
namespace {

const char* kind_name(WeightKind kind) {
  switch (kind) {
    case WeightKind::kTokenEmbedding: return "token_embedding";
    case WeightKind::kAttnNorm: return "attn_norm";
    case WeightKind::kAttnQ: return "attn_q";
    case WeightKind::kAttnK: return "attn_k";
    case WeightKind::kAttnV: return "attn_v";
    case WeightKind::kAttnQBias: return "attn_q_bias";
    case WeightKind::kAttnKBias: return "attn_k_bias";
    case WeightKind::kAttnVBias: return "attn_v_bias";
    case WeightKind::kAttnOutput: return "attn_output";
    case WeightKind::kFfnNorm: return "ffn_norm";
    case WeightKind::kFfnGate: return "ffn_gate";
    case WeightKind::kFfnUp: return "ffn_up";
    case WeightKind::kFfnDown: return "ffn_down";
    case WeightKind::kOutputNorm: return "output_norm";
    case WeightKind::kLmHead: return "lm_head";
  }
  return "unknown_weight";
}

}  // namespace

std::string to_string(const WeightId& id) {
  if (id.layer < 0) return kind_name(id.kind);
  return "layer " + std::to_string(id.layer) + " " + kind_name(id.kind);
}

}  // namespace tessera::runtime
