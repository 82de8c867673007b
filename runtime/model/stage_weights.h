#pragma once
// The weights one rank holds: its pipeline stage's layers, sliced for its tensor-parallel shard, in f32, in the
// fused layouts the decoder computes with. Loaded straight from the model file (GGUF or safetensors): each
// rank reads only its rows / columns, no offline conversion.
#include <vector>

#include "parallel/topology.h"
#include "runtime/core/tensor.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_parallel_shard.h"
#include "runtime/model/weight_source.h"

namespace tessera::runtime {

struct LayerWeights {
  Tensor attn_norm;    // [hidden]
  Tensor qkv;          // [(q_local + 2 * kv_local) * head_dim, hidden]: this rank's Q rows, then K, then V
  Tensor qkv_bias;     // [(q_local + 2 * kv_local) * head_dim], or empty when the model has no QKV bias
  Tensor attn_output;  // [hidden, q_local * head_dim] (row-parallel: input columns of this rank's heads)
  Tensor ffn_norm;     // [hidden]
  Tensor gate_up;      // [2 * ffn_local, hidden]: gate rows, then up rows
  Tensor down;         // [hidden, ffn_local] (row-parallel)
};

struct StageWeights {
  parallel::LayerRange layers;
  std::vector<LayerWeights> layer;  // layer[i] is model layer layers.begin + i
  Tensor embedding;                 // first stage: [local_vocab, hidden]; else empty
  Tensor output_norm;               // last stage: [hidden]; else empty
  Tensor lm_head;                   // last stage: [local_vocab, hidden] (the embedding when tied); else empty

  size_t bytes() const;
};

StageWeights load_stage_weights(const WeightSource& source, const ModelConfig& config,
                                const TensorParallelShard& shard, parallel::LayerRange layers, bool first_stage,
                                bool last_stage);

}  // namespace tessera::runtime
