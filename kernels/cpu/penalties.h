#pragma once
// Repetition, presence and frequency penalties on one row of logits, applied in place before sampling, with the
// semantics of vLLM and the OpenAI API:
//   repetition (Hugging Face / CTRL): for every token that occurs in the prompt or the output so far,
//                                     logit > 0 ? logit / r : logit * r            (r = 1: off)
//   frequency:                        logit -= f * (times the token occurs in the output)
//   presence:                         logit -= p * (1 if it occurs in the output at all)
// The context is the sequence's tokens in position order; the output is its tail from `prompt_length` on.
#include <cstdint>
#include <span>

namespace tessera::kernels::cpu {

struct PenaltyParams {
  float repetition = 1.0f;  // > 0
  float frequency = 0.0f;   // [-2, 2] in the OpenAI API
  float presence = 0.0f;    // [-2, 2]
  bool active() const { return repetition != 1.0f || frequency != 0.0f || presence != 0.0f; }
};

// logits: [vocab]. Token ids outside [0, vocab) in `context` throw tessera::Error.
void apply_penalties(float* logits, int64_t vocab, std::span<const int32_t> context, int64_t prompt_length,
                     const PenaltyParams& params);

}  // namespace tessera::kernels::cpu
