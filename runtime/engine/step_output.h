#pragma once
// What one step produced for one sequence, as the sampling rank (last stage, tp_rank 0) reports it to the leader:
// the sampled token with its logprobs when asked, and the logprobs of prompt tokens for echo requests.
// The encoding travels from the sampling rank to the leader (parallel::MessageTag::kSampledTokens) when they are
// different ranks; decoding validates every length.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kernels/cpu/logprobs.h"

namespace tessera::runtime {

struct StepOutput {
  uint64_t sequence_id = 0;
  bool sampled = false;  // false: the step only reports prompt logprobs (a prefill chunk that is not the last)
  int32_t token = 0;
  std::optional<kernels::cpu::RowLogprobs> logprobs;        // of `token`, when the request asked for logprobs
  std::vector<kernels::cpu::RowLogprobs> prompt_logprobs;   // one per SequenceStep::prompt_logprob_targets entry
};

std::vector<std::byte> encode_step_outputs(std::span<const StepOutput> outputs);
// Throws tessera::Error on a truncated or inconsistent message.
std::vector<StepOutput> decode_step_outputs(std::span<const std::byte> bytes);

}  // namespace tessera::runtime
