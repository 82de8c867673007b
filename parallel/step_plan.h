#pragma once
// The leader's plan for one engine iteration, broadcast to every rank. Nobody but the leader decides what runs:
// ranks that decide alone drift apart and hang. Shutdown and cancellation travel in the same message.
// Wire format: a compact little-endian encoding with a magic and a version; decoding validates every length.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "parallel/communicator.h"

namespace tessera::parallel {

// Sampling settings as they travel on the wire; the last stage turns them into kernel parameters.
struct SamplingSettings {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  uint64_t seed = 0;
  bool operator==(const SamplingSettings&) const = default;
};

struct SequenceStep {
  uint64_t sequence_id = 0;
  int32_t start_position = 0;          // position of new_tokens[0]; the KV cache holds [0, start_position)
  std::vector<int32_t> new_tokens;     // prompt chunk (prefill) or the last sampled token (decode)
  std::vector<int32_t> block_table;    // KV cache blocks of this sequence, in position order
  bool sample = true;                  // false for a prefill chunk that is not the prompt's last
  SamplingSettings sampling;
  bool operator==(const SequenceStep&) const = default;
};

struct StepPlan {
  static constexpr uint32_t kMagic = 0x54505350;  // "PSPT"
  static constexpr uint32_t kVersion = 1;

  uint64_t step_index = 0;
  std::vector<SequenceStep> sequences;
  std::vector<uint64_t> finished;  // sequences that ended or were cancelled: ranks drop their state
  bool shutdown = false;           // every rank leaves its engine loop after this plan
  bool operator==(const StepPlan&) const = default;
};

std::vector<std::byte> encode_step_plan(const StepPlan& plan);
// Throws tessera::Error on a wrong magic or version, a truncated message or lengths that exceed the message.
StepPlan decode_step_plan(std::span<const std::byte> bytes);

// Collective over `group`: member `root` sends `plan`, every other member receives it into `plan`.
void broadcast_step_plan(Communicator& group, StepPlan& plan, int root = 0);

}  // namespace tessera::parallel
