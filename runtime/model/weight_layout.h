#pragma once
// What a ModelConfig says about its weights, independent of any file format: which weights a decoder of that
// config reads and the shape (PyTorch order) each must have. Every weight reader checks a file against this, and
// `tessera inspect` sums over it, so a new architecture flag (biases, tied embeddings) is decided in one place.
#include <cstdint>
#include <string_view>
#include <vector>

#include "runtime/model/model_config.h"
#include "runtime/model/weight_source.h"

namespace tessera::runtime {

// True for the per-layer kinds (norms, projections, biases); false for the embedding, final norm and LM head.
bool is_layer_weight(WeightKind kind);

// Whether a decoder of this config reads `id`: layer weights need 0 <= layer < num_layers, model-level ones
// layer -1; the QKV biases exist only with attention_qkv_bias, the LM head only without tied embeddings (a tied
// checkpoint that still stores lm_head.weight keeps it unread: the embedding serves as LM head).
bool config_implies_weight(const ModelConfig& config, const WeightId& id);

// The shape the config gives `id`, PyTorch order ([out_features, in_features] for matrices).
std::vector<int64_t> expected_weight_shape(const ModelConfig& config, const WeightId& id);

// Every weight the decoder reads for this config, model-level ones first, then layer by layer: exactly the ids
// for which config_implies_weight holds.
std::vector<WeightId> model_weight_ids(const ModelConfig& config);

// Throws tessera::Error when `found`, the shape of tensor `tensor_name` in `file` (a description for the
// message), is not expected_weight_shape(config, id). The message names the file, the tensor, the weight and
// both shapes.
void check_weight_shape(const ModelConfig& config, const WeightId& id, const std::vector<int64_t>& found,
                        std::string_view file, std::string_view tensor_name);

}  // namespace tessera::runtime
