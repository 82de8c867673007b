#include "runtime/model/weight_layout.h"

#include <string>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

constexpr WeightKind kModelKinds[] = {WeightKind::kTokenEmbedding, WeightKind::kOutputNorm, WeightKind::kLmHead};
constexpr WeightKind kLayerKinds[] = {
    WeightKind::kAttnNorm,  WeightKind::kAttnQ,     WeightKind::kAttnK,     WeightKind::kAttnV,
    WeightKind::kAttnQBias, WeightKind::kAttnKBias, WeightKind::kAttnVBias, WeightKind::kAttnOutput,
    WeightKind::kFfnNorm,   WeightKind::kFfnGate,   WeightKind::kFfnUp,     WeightKind::kFfnDown,
};

// Not Shape::to_string: a malformed file may hold a tensor of more dimensions than Shape allows, and the message
// must still name it.
std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace

bool is_layer_weight(WeightKind kind) {
  return kind != WeightKind::kTokenEmbedding && kind != WeightKind::kOutputNorm && kind != WeightKind::kLmHead;
}

bool config_implies_weight(const ModelConfig& config, const WeightId& id) {
  if (is_layer_weight(id.kind) != (id.layer >= 0) || id.layer >= config.num_layers) return false;
  switch (id.kind) {
    case WeightKind::kAttnQBias:
    case WeightKind::kAttnKBias:
    case WeightKind::kAttnVBias: return config.attention_qkv_bias;
    case WeightKind::kLmHead: return !config.tie_word_embeddings;
    default: return true;
  }
}

std::vector<int64_t> expected_weight_shape(const ModelConfig& config, const WeightId& id) {
  const int64_t hidden = config.hidden_size, ffn = config.intermediate_size, vocab = config.vocab_size;
  const int64_t q = int64_t{config.num_heads} * config.head_dim;
  const int64_t kv = int64_t{config.num_kv_heads} * config.head_dim;
  switch (id.kind) {
    case WeightKind::kTokenEmbedding:
    case WeightKind::kLmHead: return {vocab, hidden};
    case WeightKind::kAttnNorm:
    case WeightKind::kFfnNorm:
    case WeightKind::kOutputNorm: return {hidden};
    case WeightKind::kAttnQ: return {q, hidden};
    case WeightKind::kAttnK:
    case WeightKind::kAttnV: return {kv, hidden};
    case WeightKind::kAttnQBias: return {q};
    case WeightKind::kAttnKBias:
    case WeightKind::kAttnVBias: return {kv};
    case WeightKind::kAttnOutput: return {hidden, q};
    case WeightKind::kFfnGate:
    case WeightKind::kFfnUp: return {ffn, hidden};
    case WeightKind::kFfnDown: return {hidden, ffn};
  }
  fail("unknown weight kind ", static_cast<int>(id.kind));
}

std::vector<WeightId> model_weight_ids(const ModelConfig& config) {
  std::vector<WeightId> ids;
  for (WeightKind kind : kModelKinds) {
    if (config_implies_weight(config, {kind})) ids.push_back({kind});
  }
  for (int layer = 0; layer < config.num_layers; ++layer) {
    for (WeightKind kind : kLayerKinds) {
      if (config_implies_weight(config, {kind, layer})) ids.push_back({kind, layer});
    }
  }
  return ids;
}

void check_weight_shape(const ModelConfig& config, const WeightId& id, const std::vector<int64_t>& found,
                        std::string_view file, std::string_view tensor_name) {
  const std::vector<int64_t> want = expected_weight_shape(config, id);
  TESSERA_CHECK(found == want, file, ": tensor '", tensor_name, "' (", to_string(id), ") has shape ", shape_text(found),
                " but the model config implies ", shape_text(want));
}

}  // namespace tessera::runtime
