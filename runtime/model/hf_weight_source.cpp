#include "runtime/model/hf_weight_source.h"

#include "kernels/base/error.h"
#include "runtime/model/weight_layout.h"

namespace tessera::runtime {

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
  // Every weight the config implies must be there, shaped as the config says, in a dtype we can decode.
  for (const WeightId& id : model_weight_ids(config_)) {
    const auto location = locate(id);
    const auto& tensor = *location.tensor;
    check_weight_shape(config_, id, tensor.shape, location.file->description(), tensor.name);
    const auto traits = safetensors_dtype_traits(tensor.dtype);
    TESSERA_CHECK(traits.decodable, location.file->description(), ": tensor '", tensor.name, "' has dtype ",
                  traits.name, ", which Tessera cannot read as weights");
  }
}

std::unique_ptr<HfWeightSource> HfWeightSource::open(const std::filesystem::path& directory,
                                                     const ModelConfig& config) {
  return std::make_unique<HfWeightSource>(SafetensorsCheckpoint::open(directory), config);
}

SafetensorsCheckpoint::Location HfWeightSource::locate(const WeightId& id) const {
  const std::string name = hf_tensor_name(id);
  TESSERA_CHECK(config_implies_weight(config_, id), describe(), ": weight ", name, " is not part of this ",
                config_.architecture, " model (", config_.num_layers, " layers, tied embeddings ",
                config_.tie_word_embeddings, ", qkv bias ", config_.attention_qkv_bias, ")");
  const auto location = checkpoint_.find(name);
  TESSERA_CHECK(location.tensor != nullptr, describe(), ": missing tensor '", name, "'");
  return location;
}

bool HfWeightSource::has(const WeightId& id) const {
  return config_implies_weight(config_, id) && checkpoint_.find(hf_tensor_name(id)).tensor != nullptr;
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
