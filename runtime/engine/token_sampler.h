#pragma once
// The sampling rank's sampler (last stage, tp_rank 0): turns one row of full-vocabulary logits into a token, with
// penalties, logprobs and the request's own random stream.
//
// Penalties need each sequence's tokens. No plan carries them all (decode steps carry one token, cached prefixes
// none), so the sampler keeps them itself for the sequences that use penalties: every plan passes through observe(),
// whose new tokens extend the history; SequenceStep::history_reset starts it over from history_prefix (admission,
// or resumption after a preemption); plan.finished drops it.
// Randomness: SamplingRng::for_step(seed, position of the sampled token), so a result never depends on the batch,
// on chunking or on preemption, and a replay with the same seed draws the same numbers.
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "parallel/step_plan.h"
#include "runtime/engine/step_output.h"

namespace tessera::runtime {

class TokenSampler {
 public:
  void observe(const parallel::StepPlan& plan);
  // The step's sampled token from `row` (its last row's logits, [vocab]), with logprobs if asked.
  void sample(const parallel::SequenceStep& step, const float* row, int64_t vocab, StepOutput& out);
  size_t tracked_sequences() const { return history_.size(); }

 private:
  std::unordered_map<uint64_t, std::vector<int32_t>> history_;
  std::vector<float> scratch_;
};

}  // namespace tessera::runtime
