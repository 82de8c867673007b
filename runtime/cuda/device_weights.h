#pragma once
// This rank's weights in device memory, bf16, in the fused layouts of the CPU stage (runtime/model/stage_weights.h:
// QKV rows Q|K|V of this rank's heads, gate|up rows, row-parallel output and down columns). Loaded layer by layer:
// each layer is read from the WeightSource in f32 (dequantized on the host, only this rank's rows / columns),
// rounded to bf16 and uploaded before the next is read, so host memory holds one layer at a time.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <vector>

#include "parallel/topology.h"
#include "runtime/cuda/device_array.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_parallel_shard.h"
#include "runtime/model/weight_source.h"

namespace tessera::runtime::cuda {

using Bf16Array = DeviceArray<__nv_bfloat16>;

struct DeviceLayerWeights {
  Bf16Array attn_norm;    // [hidden]
  Bf16Array qkv;          // [(q_local + 2 kv_local) * head_dim, hidden]
  Bf16Array qkv_bias;     // [(q_local + 2 kv_local) * head_dim] or empty
  Bf16Array attn_output;  // [hidden, q_local * head_dim]
  Bf16Array ffn_norm;     // [hidden]
  Bf16Array gate_up;      // [2 * ffn_local, hidden]
  Bf16Array down;         // [hidden, ffn_local]
};

struct DeviceStageWeights {
  std::vector<DeviceLayerWeights> layer;
  Bf16Array embedding;    // first stage: [local_vocab, hidden]
  Bf16Array output_norm;  // last stage: [hidden]
  Bf16Array lm_head;      // last stage: [local_vocab, hidden]; empty when tied and this rank holds the embedding
  bool lm_head_is_embedding = false;

  const __nv_bfloat16* lm_head_data() const { return lm_head_is_embedding ? embedding.get() : lm_head.get(); }
  size_t bytes() const;
};

// What upload_stage_weights will allocate, from the shapes: checked against the memory budget before any upload.
uint64_t device_weight_bytes(const ModelConfig& config, const TensorParallelShard& shard, parallel::LayerRange layers,
                             bool first_stage, bool last_stage);

DeviceStageWeights upload_stage_weights(const WeightSource& source, const ModelConfig& config,
                                        const TensorParallelShard& shard, parallel::LayerRange layers,
                                        bool first_stage, bool last_stage, CachingDevicePool& pool,
                                        cudaStream_t stream);

}  // namespace tessera::runtime::cuda
