#pragma once
// The backend seam: what the engine needs from this rank's part of the model, whatever computes it (the CPU
// DecoderStage, the CUDA stage). Hidden states and logits cross this interface as HOST f32 tensors, so the
// pipeline transfer and sampling stay backend-independent: at decode a step moves [batch, hidden] floats, a
// small cost next to the layers.
#include <cstdint>
#include <vector>

#include "runtime/core/tensor.h"
#include "runtime/model/forward_batch.h"
#include "runtime/model/model_config.h"

namespace tessera::runtime {

class ModelStage {
 public:
  virtual ~ModelStage() = default;

  virtual const ModelConfig& config() const = 0;
  // First stage: hidden[T, hidden] (f32, host) = embedding of batch.tokens, complete on every TP member.
  virtual void embed(const ForwardBatch& batch, Tensor& hidden) = 0;
  // This stage's layers on hidden[T, hidden] (f32, host) in place, reading and extending the KV cache.
  virtual void run_layers(const ForwardBatch& batch, Tensor& hidden) = 0;
  // Last stage: full-vocabulary logits [rows.size(), vocab] (f32, host) of the given rows of hidden, on every
  // member of the TP group. `out` is resized (Tensor::resize), so a tensor passed at every step keeps one allocation.
  // Buffers for up to kRetainedLogitRows rows (a decode batch) are kept between steps; a step with more (prompt
  // logprobs over a long prompt: up to the step's token budget, 400 MB at 2048 rows of a 49k vocabulary) releases
  // them afterwards, so that one scoring request does not pin its peak for the server's life.
  static constexpr int64_t kRetainedLogitRows = 256;
  virtual void logits(const Tensor& hidden, const std::vector<int64_t>& rows, Tensor& out) = 0;
};

}  // namespace tessera::runtime
