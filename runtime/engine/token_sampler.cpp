#include "runtime/engine/token_sampler.h"

#include <algorithm>

#include "kernels/base/error.h"
#include "kernels/cpu/penalties.h"
#include "kernels/cpu/sampling.h"

namespace tessera::runtime {

void TokenSampler::observe(const parallel::StepPlan& plan) {
  for (const uint64_t id : plan.finished) history_.erase(id);
  for (const parallel::SequenceStep& s : plan.sequences) {
    if (!s.sampling.penalized()) continue;
    std::vector<int32_t>& h = history_[s.sequence_id];
    if (s.history_reset) h = s.history_prefix;
    TESSERA_CHECK(h.size() == static_cast<size_t>(s.start_position), "sampler: sequence ", s.sequence_id,
                  " resumes at position ", s.start_position, " but its history holds ", h.size(), " tokens");
    h.insert(h.end(), s.new_tokens.begin(), s.new_tokens.end());
  }
}

void TokenSampler::sample(const parallel::SequenceStep& step, const float* row, int64_t vocab, StepOutput& out) {
  const parallel::SamplingSettings& settings = step.sampling;
  kernels::cpu::SamplingParams params;
  params.temperature = settings.temperature;
  params.top_k = settings.top_k;
  params.top_p = settings.top_p;
  params.min_p = settings.min_p;
  params.seed = settings.seed;
  const float* logits = row;
  if (settings.penalized()) {
    const auto it = history_.find(step.sequence_id);
    TESSERA_CHECK(it != history_.end(), "sampler: no history for penalized sequence ", step.sequence_id);
    scratch_.assign(row, row + vocab);
    kernels::cpu::PenaltyParams penalties{settings.repetition_penalty, settings.frequency_penalty,
                                          settings.presence_penalty};
    kernels::cpu::apply_penalties(scratch_.data(), vocab, it->second, settings.prompt_length, penalties);
    logits = scratch_.data();
  }
  // The position of the token being sampled names the draw: replays and preemptions draw the same number.
  const auto position = static_cast<uint64_t>(step.start_position) + step.new_tokens.size();
  out.sampled = true;
  out.token = kernels::cpu::sample_token(logits, vocab, params, position);
  if (settings.logprobs >= 0) out.logprobs = kernels::cpu::row_logprobs(row, vocab, out.token, settings.logprobs);
}

}  // namespace tessera::runtime
