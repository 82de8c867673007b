#pragma once
// This rank's part of the Llama-family decoder (Llama 2/3/3.1, Mistral, Qwen2, SmolLM), written once against the
// kernel interface: embedding (first stage), its layers, final norm and LM head (last stage). Tensor parallelism
// appears only as the all-reduces after the row-parallel projections and the all-gather of the vocab-parallel
// logits; the pipeline transfer of hidden states is the engine's business.
#include <memory>

#include "kernels/cpu/rope.h"
#include "parallel/communicator.h"
#include "runtime/core/tensor.h"
#include "runtime/model/forward_batch.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/model_config.h"
#include "runtime/model/model_stage.h"
#include "runtime/model/stage_weights.h"
#include "runtime/model/tensor_parallel_shard.h"

namespace tessera::runtime {

// The model's RoPE (theta, linear / llama3 scaling) in the kernels' terms; every backend builds its table from it.
kernels::cpu::RopeConfig rope_config_of(const ModelConfig& config);

// The CPU backend's ModelStage: f32 activations on the host, the kernels of kernels/cpu.
class DecoderStage final : public ModelStage {
 public:
  // `tp` is this rank's tensor-parallel group (size shard.tp); `weights` and `cache` cover this stage's layers.
  DecoderStage(const ModelConfig& config, const TensorParallelShard& shard, StageWeights weights,
               KvCacheShape cache_shape, parallel::HostCommunicator& tp);

  const ModelConfig& config() const override { return config_; }
  const StageWeights& weights() const { return weights_; }

  // First stage: hidden[T, hidden] = embedding of batch.tokens (vocab-parallel lookup + all-reduce).
  void embed(const ForwardBatch& batch, Tensor& hidden) override;
  // Runs this stage's layers on hidden[T, hidden] in place, reading and extending the KV cache.
  void run_layers(const ForwardBatch& batch, Tensor& hidden) override;
  // Last stage: full-vocabulary logits [rows.size(), vocab] of the given rows of hidden (final norm, LM head,
  // all-gather across the TP group). Every member of the TP group receives the full logits. `out` is resized,
  // keeping its allocation when it is large enough, so a caller that passes the same tensor each step reuses it.
  void logits(const Tensor& hidden, const std::vector<int64_t>& rows, Tensor& out) override;

 private:
  void attention_block(const ForwardBatch& batch, int local_layer, Tensor& hidden);
  void ffn_block(int local_layer, Tensor& hidden, int64_t tokens);
  void ensure_scratch(int64_t tokens);

  ModelConfig config_;
  TensorParallelShard shard_;
  StageWeights weights_;
  PagedKvCache cache_;
  parallel::HostCommunicator& tp_;
  kernels::cpu::RopeTable rope_;
  // Scratch buffers, grown to the largest batch seen.
  int64_t scratch_tokens_ = 0;
  Tensor normed_, qkv_, attn_, projected_, gate_up_, act_;
  // The LM head's, resized to each step's logit rows (Tensor::resize keeps the largest allocation, up to
  // kRetainedLogitRows rows).
  Tensor logit_rows_, partial_logits_, local_logits_, gathered_logits_;
};

}  // namespace tessera::runtime
