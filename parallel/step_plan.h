#pragma once
// The leader's plan for one engine iteration, broadcast to every rank. Nobody but the leader decides what runs:
// ranks that decide alone drift apart and hang. Shutdown and cancellation travel in the same message.
// Wire format: a compact little-endian encoding with a magic and a version; decoding validates every length.
// This full form is stateless: every plan carries every sequence's whole block table and sampling settings. The
// delta form (parallel/step_plan_delta.h: StepPlanEncoder, StepPlanDecoder) carries only what changed since the
// plans before it and rebuilds the same StepPlan.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "parallel/block_table.h"
#include "parallel/token_list.h"

namespace tessera::parallel {

// Sampling settings as they travel on the wire; the last stage turns them into kernel parameters.
struct SamplingSettings {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  uint64_t seed = 0;
  float repetition_penalty = 1.0f;  // 1: off (over prompt and output tokens)
  float frequency_penalty = 0.0f;   // 0: off (output tokens)
  float presence_penalty = 0.0f;    // 0: off (output tokens)
  int32_t prompt_length = 0;        // where the output starts, for the penalties (constant across preemptions)
  int8_t logprobs = -1;             // -1: none; k >= 0: the sampled token's logprob and the k most likely
  int8_t prompt_logprobs = -1;      // -1: none; k >= 0: logprobs of every prompt token after the first (echo)
  bool penalized() const {
    return repetition_penalty != 1.0f || frequency_penalty != 0.0f || presence_penalty != 0.0f;
  }
  bool operator==(const SamplingSettings&) const = default;
};

// runtime::Scheduler::fill_step writes every field (it reuses recycled steps): a new field is set there too.
struct SequenceStep {
  uint64_t sequence_id = 0;
  int32_t start_position = 0;          // position of new_tokens[0]; the KV cache holds [0, start_position)
  TokenList new_tokens;                // prompt chunk (prefill) or the last sampled token (decode), inline if short
  BlockTable block_table;              // KV cache blocks of this sequence, in position order (shared, parallel/block_table.h)
  bool sample = true;                  // false for a prefill chunk that is not the prompt's last
  SamplingSettings sampling;
  // Only for sampling.penalized() sequences, read by the sampling rank, which keeps each such sequence's tokens:
  // true on the first step of a sequence's run (its admission, or its resumption after a preemption), where
  // history_prefix holds the tokens at positions [0, start_position) that no plan carried (prefix-cache hits).
  bool history_reset = false;
  std::vector<int32_t> history_prefix;
  // Only for sampling.prompt_logprobs >= 0 prefill steps: the prompt token that follows each new token, for the
  // rows that have one (all of them except the prompt's last row), in row order.
  std::vector<int32_t> prompt_logprob_targets;
  bool operator==(const SequenceStep&) const = default;
};

struct StepPlan {
  static constexpr uint32_t kMagic = 0x54505350;  // "PSPT"
  static constexpr uint32_t kVersion = 3;

  uint64_t step_index = 0;
  // Which of the pipeline's micro-batches this plan is (0 .. micro_batches - 1; always 0 without pipelining):
  // up to that many plans are in flight at once, each over its own sequences.
  uint8_t micro_batch = 0;
  std::vector<SequenceStep> sequences;
  std::vector<uint64_t> finished;  // sequences that ended or were cancelled: ranks drop their state
  bool shutdown = false;           // every rank leaves its engine loop after this plan
  // An idle leader's liveness check (about once a second): no sequences; every rank answers by joining one barrier
  // of the world, so the leader knows the followers are alive and they know the leader is.
  bool heartbeat = false;
  bool operator==(const StepPlan&) const = default;
};

std::vector<std::byte> encode_step_plan(const StepPlan& plan);
// Throws tessera::Error on a wrong magic or version, a truncated message or lengths that exceed the message.
StepPlan decode_step_plan(std::span<const std::byte> bytes);

// Plans travel from the leader to every rank through a StepPlanChannel (parallel/step_plan_channel.h).

}  // namespace tessera::parallel
