#pragma once
// The leader's continuous-batching scheduler. Each step it plans: one decode token for every running sequence,
// then prompt tokens of admitted sequences up to a token budget (long prompts are prefilled in chunks over several
// steps), admitting waiting requests in arrival order while KV blocks and batch slots allow. A request's KV blocks
// (prompt + max_new_tokens) are reserved at admission, so a running sequence never runs out of cache.
// The scheduler only decides; the engine broadcasts its plans and feeds the sampled tokens back.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "parallel/step_plan.h"
#include "runtime/engine/block_allocator.h"
#include "runtime/engine/stage_executor.h"

namespace tessera::runtime {

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, the stop id included when one ended it
  std::string finish_reason;    // "stop", "length" or "cancelled"
  int prompt_tokens = 0;
  double queue_seconds = 0;     // submitted until admitted
  double prefill_seconds = 0;   // admitted until the first token
  double decode_seconds = 0;    // first token until the last
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int max_new_tokens = 64;
  parallel::SamplingSettings sampling;
  std::vector<int32_t> stop_ids;  // generation ends after emitting one of these
  std::function<void(int32_t)> on_token;                        // each generated id, as soon as it is known
  std::function<void(const GenerationResult&)> on_finish;       // once, when the sequence ends
};

struct SchedulerLimits {
  int max_sequences = 64;         // running sequences per step
  int max_step_tokens = 2048;     // tokens per step (decode tokens + prefill chunks)
  int max_sequence_length = 4096; // prompt + new tokens
};

class Scheduler {
 public:
  Scheduler(int kv_blocks, int block_size, SchedulerLimits limits);

  // Validates and queues a request; throws tessera::Error (too long, empty prompt, can never fit the cache).
  uint64_t submit(GenerationRequest request);
  // Ends a queued or running request with finish reason "cancelled" at the next plan.
  void cancel(uint64_t id);
  bool idle() const { return waiting_.empty() && running_.empty() && finished_.empty(); }
  size_t running() const { return running_.size(); }
  size_t waiting() const { return waiting_.size(); }

  // The next step (the engine numbers it). Empty of sequences only when the scheduler is idle (it may still carry
  // finished ids).
  parallel::StepPlan next_plan();
  // The tokens the step sampled (for the plan's sampling sequences, in plan order).
  void complete(const parallel::StepPlan& plan, const std::vector<SampledToken>& sampled);

 private:
  using Clock = std::chrono::steady_clock;
  struct Sequence {
    uint64_t id = 0;
    GenerationRequest request;
    std::vector<int32_t> blocks;
    int prefilled = 0;              // prompt tokens already in the KV cache
    std::vector<int32_t> generated;
    Clock::time_point submitted, admitted, first_token;
    bool cancelled = false;
  };

  void admit();
  void finish(Sequence& sequence, const char* reason);
  int blocks_for(const GenerationRequest& request) const;

  KvBlockAllocator blocks_;
  int block_size_;
  SchedulerLimits limits_;
  uint64_t next_id_ = 1;
  std::deque<Sequence> waiting_;
  std::map<uint64_t, Sequence> running_;  // by id: admission order == id order
  std::vector<uint64_t> finished_;         // to announce in the next plan
};

}  // namespace tessera::runtime
