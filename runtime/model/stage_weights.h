#pragma once
// The weights one rank holds: its pipeline stage's layers, sliced for its tensor-parallel shard, in the fused
// layouts the decoder computes with. Loaded straight from the model file (GGUF or safetensors): each rank reads
// only its rows / columns, no offline conversion. Vectors and the embedding are f32; the projection matrices are
// f32 too by default (the exact reference) or, on request, packed to bf16 / q8_0, or kept in the file's own blocks
// (native), to cut the bytes each decode step streams (kernels/cpu/packed_matrix.h).
#include <vector>

#include "kernels/cpu/packed_matrix.h"
#include "parallel/topology.h"
#include "runtime/core/tensor.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_parallel_shard.h"
#include "runtime/model/weight_source.h"

namespace tessera::runtime {

using WeightMatrix = kernels::cpu::PackedMatrix;  // [out, in], f32 or packed

struct LayerWeights {
  Tensor attn_norm;          // [hidden]
  WeightMatrix qkv;          // [(q_local + 2 * kv_local) * head_dim, hidden]: this rank's Q rows, then K, then V
  Tensor qkv_bias;           // [(q_local + 2 * kv_local) * head_dim], or empty when the model has no QKV bias
  WeightMatrix attn_output;  // [hidden, q_local * head_dim] (row-parallel: input columns of this rank's heads)
  Tensor ffn_norm;           // [hidden]
  WeightMatrix gate_up;      // [2 * ffn_local, hidden]: gate rows, then up rows
  WeightMatrix down;         // [hidden, ffn_local] (row-parallel)
};

struct StageWeights {
  parallel::LayerRange layers;
  std::vector<LayerWeights> layer;  // layer[i] is model layer layers.begin + i
  Tensor embedding;                 // first stage: [local_vocab, hidden]; else empty
  Tensor output_norm;               // last stage: [hidden]; else empty
  WeightMatrix lm_head;             // last stage: [local_vocab, hidden] (the embedding when tied); else empty

  size_t bytes() const;
};

// matrix_format: how the projection matrices and the LM head are kept. A q8_0 matrix whose rows are not whole
// blocks of 32 (an odd tensor-parallel slice) stays f32; so does a native one unless every piece of it is stored in
// a block format and can be read as stored (WeightSource::read_rows_raw / read_columns_raw: GGUF files, with
// row-parallel column slices that fall on block boundaries).
StageWeights load_stage_weights(const WeightSource& source, const ModelConfig& config,
                                const TensorParallelShard& shard, parallel::LayerRange layers, bool first_stage,
                                bool last_stage,
                                kernels::cpu::WeightFormat matrix_format = kernels::cpu::WeightFormat::kF32);

// One layer of the above (model layer `layer`), for backends that convert and upload layer by layer rather than
// holding a whole stage in host memory first (runtime/cuda/).
LayerWeights load_layer_weights(const WeightSource& source, const ModelConfig& config, const TensorParallelShard& shard,
                                int layer, kernels::cpu::WeightFormat matrix_format = kernels::cpu::WeightFormat::kF32);

}  // namespace tessera::runtime
