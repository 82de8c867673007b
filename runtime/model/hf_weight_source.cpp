#include "runtime/model/hf_weight_source.h"

#include <array>
#include <sstream>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

constexpr std::array<WeightKind, 12> kLayerKinds{
    WeightKind::kAttnNorm,  WeightKind::kAttnQ,     WeightKind::kAttnK,       WeightKind::kAttnV,
    WeightKind::kAttnQBias, WeightKind::kAttnKBias, WeightKind::kAttnVBias,   WeightKind::kAttnOutput,
    WeightKind::kFfnNorm,   WeightKind::kFfnGate,   WeightKind::kFfnUp,       WeightKind::kFfnDown,
};
constexpr std::array<WeightKind, 3> kModelKinds{WeightKind::kTokenEmbedding, WeightKind::kOutputNorm,
                                                WeightKind::kLmHead};

bool is_layer_kind(WeightKind kind) {
  return kind != WeightKind::kTokenEmbedding && kind != WeightKind::kOutputNorm && kind != WeightKind::kLmHead;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

}  // namespace

std::string hf_tensor_name(const WeightId& id) {
  const std::string layer = concat("model.layers.", id.layer, ".");
  switch (id.kind) {
    case WeightKind::kTokenEmbedding: return "model.embed_tokens.weight";
    case WeightKind::kOutputNorm: return "model.norm.weight";
    case WeightKind::kLmHead: return "lm_head.weight";
    case WeightKind::kAttnNorm: return layer + "input_layernorm.weight";
    case WeightKind::kAttnQ: return layer + "self_attn.q_proj.weight";
    case WeightKind::kAttnK: return layer + "self_attn.k_proj.weight";
    case WeightKind::kAttnV: return layer + "self_attn.v_proj.weight";
    case WeightKind::kAttnQBias: return layer + "self_attn.q_proj.bias";
    case WeightKind::kAttnKBias: return layer + "self_attn.k_proj.bias";
    case WeightKind::kAttnVBias: return layer + "self_attn.v_proj.bias";
    case WeightKind::kAttnOutput: return layer + "self_attn.o_proj.weight";
    case WeightKind::kFfnNorm: return layer + "post_attention_layernorm.weight";
    case WeightKind::kFfnGate: return layer + "mlp.gate_proj.weight";
    case WeightKind::kFfnUp: return layer + "mlp.up_proj.weight";
    case WeightKind::kFfnDown: return layer + "mlp.down_proj.weight";
  }
  fail("unknown weight kind ", static_cast<int>(id.kind));
}

HfWeightSource::HfWeightSource(SafetensorsCheckpoint checkpoint, const ModelConfig& config)
    : checkpoint_(std::move(checkpoint)), config_(config) {
  auto check = [&](const WeightId& id) {
    if (!expected(id)) return;
    const auto location = locate(id);
    const auto& tensor = *location.tensor;
    const auto want = expected_shape(id);
    TESSERA_CHECK(tensor.shape == want, location.file->description(), ": tensor '", tensor.name, "' has shape ",
                  shape_string(tensor.shape), " but the model config implies ", shape_string(want));
    const auto traits = safetensors_dtype_traits(tensor.dtype);
    TESSERA_CHECK(traits.decodable, location.file->description(), ": tensor '", tensor.name, "' has dtype ",
                  traits.name, ", which Tessera cannot read as weights");
  };
  for (WeightKind kind : kModelKinds) check(WeightId{kind});
  for (int layer = 0; layer < config_.num_layers; ++layer) {
    for (WeightKind kind : kLayerKinds) check(WeightId{kind, layer});
  }
}

std::unique_ptr<HfWeightSource> HfWeightSource::open(const std::filesystem::path& directory,
                                                     const ModelConfig& config) {
  return std::make_unique<HfWeightSource>(SafetensorsCheckpoint::open(directory), config);
}

bool HfWeightSource::expected(const WeightId& id) const {
  if (is_layer_kind(id.kind) != (id.layer >= 0) || id.layer >= config_.num_layers) return false;
  switch (id.kind) {
    case WeightKind::kAttnQBias:
    case WeightKind::kAttnKBias:
    case WeightKind::kAttnVBias: return config_.attention_qkv_bias;
    // Tied checkpoints sometimes still store lm_head.weight (a copy); the decoder uses the embedding then.
    case WeightKind::kLmHead: return !config_.tie_word_embeddings;
    default: return true;
  }
}

std::vector<int64_t> HfWeightSource::expected_shape(const WeightId& id) const {
  const int64_t hidden = config_.hidden_size;
  const int64_t q_width = static_cast<int64_t>(config_.num_heads) * config_.head_dim;
  const int64_t kv_width = static_cast<int64_t>(config_.num_kv_heads) * config_.head_dim;
  const int64_t ffn = config_.intermediate_size;
  const int64_t vocab = config_.vocab_size;
  switch (id.kind) {
    case WeightKind::kTokenEmbedding:
    case WeightKind::kLmHead: return {vocab, hidden};
    case WeightKind::kAttnNorm:
    case WeightKind::kFfnNorm:
    case WeightKind::kOutputNorm: return {hidden};
    case WeightKind::kAttnQ: return {q_width, hidden};
    case WeightKind::kAttnK:
    case WeightKind::kAttnV: return {kv_width, hidden};
    case WeightKind::kAttnQBias: return {q_width};
    case WeightKind::kAttnKBias:
    case WeightKind::kAttnVBias: return {kv_width};
    case WeightKind::kAttnOutput: return {hidden, q_width};
    case WeightKind::kFfnGate:
    case WeightKind::kFfnUp: return {ffn, hidden};
    case WeightKind::kFfnDown: return {hidden, ffn};
  }
  fail("unknown weight kind ", static_cast<int>(id.kind));
}

SafetensorsCheckpoint::Location HfWeightSource::locate(const WeightId& id) const {
  const std::string name = hf_tensor_name(id);
  TESSERA_CHECK(expected(id), describe(), ": weight ", name, " is not part of this ", config_.architecture,
                " model (", config_.num_layers, " layers, tied embeddings ", config_.tie_word_embeddings,
                ", qkv bias ", config_.attention_qkv_bias, ")");
  const auto location = checkpoint_.find(name);
  TESSERA_CHECK(location.tensor != nullptr, describe(), ": missing tensor '", name, "'");
  return location;
}

bool HfWeightSource::has(const WeightId& id) const {
  return expected(id) && checkpoint_.find(hf_tensor_name(id)).tensor != nullptr;
}

WeightInfo HfWeightSource::info(const WeightId& id) const {
  const auto location = locate(id);
  const auto& tensor = *location.tensor;
  return WeightInfo{tensor.shape, std::string(safetensors_dtype_traits(tensor.dtype).name),
                    tensor.end - tensor.begin};
}

void HfWeightSource::read_rows(const WeightId& id, int64_t row_begin, int64_t row_end, float* out) const {
  const auto location = locate(id);
  location.file->read_rows(*location.tensor, row_begin, row_end, out);
}

void HfWeightSource::read_columns(const WeightId& id, int64_t col_begin, int64_t col_end, float* out) const {
  const auto location = locate(id);
  location.file->read_columns(*location.tensor, col_begin, col_end, out);
}

}  // namespace tessera::runtime
