#pragma once
// The leader's continuous-batching scheduler. It only decides; the engine broadcasts its plans and feeds the
// results back. Each step it plans, within max_step_tokens:
//   1. every running sequence, in admission order, decode steps (one token) before prefill chunks, so running
//      sequences never starve behind long prompts; long prompts are prefilled in chunks over several steps;
//   2. waiting requests, in arrival order, while batch slots, the token budget and KV blocks allow.
// KV blocks are allocated on demand as a sequence grows (runtime/engine/kv_block_manager.h), never reserved for
// prompt + max_new_tokens up front. When a running sequence needs a block and none is free, the latest admitted
// running sequence is preempted: its blocks are released and it goes back to the head of the queue, to be
// recomputed from its tokens (prompt + what it generated) when blocks free up. The random draw of each token is
// named by the token's position (TokenSampler), so a preempted request resumes with identical results.
// Prefix caching: full blocks are published in the prefix cache as they are computed; an admitted sequence takes
// the cached blocks of its longest cached prefix and skips their prefill (not for prompt-logprob requests, which
// need the logits of every prompt row).
// Micro-batches (pipeline parallelism): with SchedulerLimits::micro_batches = m > 1 the engine keeps up to m plans in
// flight, and a sequence is in at most one of them: next_plan() skips sequences whose last plan has not completed,
// and takes at most ceil(active / m) sequences, so that the running ones split into m micro-batches of about
// equal size. A sequence in flight is never preempted (a stage is writing its KV blocks) and a cancelled one ends
// once its plan completes.
// Engine thread only: not thread-safe (the serving path hands requests over through a RequestQueue).
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/logprobs.h"
#include "parallel/step_plan.h"
#include "runtime/engine/kv_block_manager.h"
#include "runtime/engine/step_output.h"

namespace tessera::runtime {

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, the stop id included when one ended it
  std::string finish_reason;    // "stop", "length", "cancelled" or "error"
  std::string error;            // for "error": what went wrong
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0; // prompt tokens whose KV came from the prefix cache at admission
  int preemptions = 0;
  double queue_seconds = 0;     // submitted until first admitted
  double prefill_seconds = 0;   // first admitted until the first token
  double decode_seconds = 0;    // first token until the last
};

// A generated token as it is known, with its logprobs when the request asked for them.
struct TokenEvent {
  int32_t token = 0;
  const kernels::cpu::RowLogprobs* logprobs = nullptr;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int max_new_tokens = 64;
  parallel::SamplingSettings sampling;  // prompt_length is filled in by the scheduler
  std::vector<int32_t> stop_ids;        // generation ends after emitting one of these
  // Requests with the same non-zero group (the n choices of one API request) are admitted one after the other's
  // prompt is in the cache, so that all but the first reuse its blocks instead of computing the prompt n times.
  uint64_t sibling_group = 0;
  // Callbacks run on the engine thread: they must not block (the serving path only hands the data over).
  std::function<void(const TokenEvent&)> on_token;
  // Prompt logprobs (sampling.prompt_logprobs >= 0): the logprobs of prompt[position], position >= 1, in order.
  std::function<void(int position, const kernels::cpu::RowLogprobs&)> on_prompt_logprobs;
  std::function<void(const GenerationResult&)> on_finish;  // once, when the sequence ends
};

struct SchedulerLimits {
  int max_sequences = 64;         // running sequences per step
  int max_step_tokens = 2048;     // tokens per step (decode tokens + prefill chunks)
  int max_sequence_length = 4096; // prompt + new tokens
  bool prefix_caching = true;
  int vocab_size = 0;             // > 0: prompt and stop ids are checked against it
  int micro_batches = 1;          // plans in flight at once (the pipeline's depth); 1: one step at a time
};

// Counters for metrics; monotonic except the gauges.
struct SchedulerStats {
  uint64_t preemptions = 0;
  uint64_t prefix_query_tokens = 0;  // prompt tokens looked up in the prefix cache
  uint64_t prefix_hit_tokens = 0;    // of those, found
  uint64_t prompt_tokens = 0;        // prompt tokens of admitted requests (first admission)
  uint64_t generated_tokens = 0;
};

class Scheduler {
 public:
  Scheduler(int kv_blocks, int block_size, SchedulerLimits limits);

  // Validates and queues a request; throws tessera::Error (empty prompt, too long for max_sequence_length or for
  // the whole KV cache, bad settings).
  uint64_t submit(GenerationRequest request);
  // Ends a queued or running request with finish reason "cancelled": its blocks are free for the next plan.
  void cancel(uint64_t id);
  // Ends every request with finish reason "error" and `message` (the engine failed).
  void fail_all(const std::string& message);

  bool idle() const { return waiting_.empty() && running_.empty() && finished_.empty(); }
  size_t running() const { return running_.size(); }
  size_t waiting() const { return waiting_.size(); }
  const KvBlockManager& blocks() const { return blocks_; }
  const SchedulerStats& stats() const { return stats_; }
  const SchedulerLimits& limits() const { return limits_; }

  // The next step (the engine numbers it). Empty of sequences only when nothing can run now (it may still carry
  // finished ids): nothing waits, or what waits needs the blocks or slots of sequences in flight.
  parallel::StepPlan next_plan();
  // The step's results (one per plan sequence that reports output, in plan order). Plans complete in the order
  // they were made.
  void complete(const parallel::StepPlan& plan, const std::vector<StepOutput>& outputs);
  // Sequences in plans that have not completed.
  size_t in_flight() const { return in_flight_; }
  // Optional, after complete(): the plan's storage (its sequence steps and their token buffers) is reused by the
  // next next_plan(), so that a steady decode batch plans without allocating.
  void recycle(parallel::StepPlan&& plan);

 private:
  using Clock = std::chrono::steady_clock;
  // What every step reads comes first, so that a decode step touches the fewest cache lines of each sequence
  // (next_plan and complete walk every running one).
  struct Sequence {
    uint64_t id = 0;
    int prompt_length = 0;
    int computed = 0;                   // tokens whose KV is in the cache
    std::vector<int32_t> tokens;        // prompt, then every generated token
    parallel::BlockTable blocks;        // shared with the plans that carry it (copied when one is appended)
    std::vector<uint64_t> block_hashes; // chain hashes of the full, computed blocks (a prefix of `blocks`)
    uint64_t scheduled_in = 0;          // the plan counter of the last plan that scheduled it
    uint64_t preempted_in = 0;          // ... that preempted it
    bool history_reset = true;          // the next step restarts the sampler's history
    bool ever_admitted = false;
    bool cancelled = false;
    bool in_flight = false;             // in a plan that has not completed
    int prompt_logprobs_reported = 1;   // next prompt position whose logprob is owed (position 0 has none)
    int cached_prompt_tokens = 0;
    int preemptions = 0;
    GenerationRequest request;
    Clock::time_point submitted, admitted, first_token;
    int generated() const { return static_cast<int>(tokens.size()) - prompt_length; }
  };
  using SequencePtr = std::unique_ptr<Sequence>;

  bool admit_front(int& budget, std::vector<std::pair<Sequence*, int>>& scheduled);
  bool grow(Sequence& s, int tokens_after);
  void preempt(Sequence& s);
  void finish(Sequence& s, const char* reason, const std::string& error = {});
  void publish_full_blocks(Sequence& s);
  // Writes the step of `s` into every field of `step`, reusing its buffers.
  void fill_step(Sequence& s, int chunk, parallel::SequenceStep& step);
  int blocks_for(int64_t tokens) const { return static_cast<int>((tokens + block_size_ - 1) / block_size_); }

  KvBlockManager blocks_;
  int block_size_;
  SchedulerLimits limits_;
  SchedulerStats stats_;
  uint64_t next_id_ = 1;
  uint64_t plan_counter_ = 0;
  size_t in_flight_ = 0;
  std::deque<SequencePtr> waiting_;
  std::deque<SequencePtr> running_;                  // admission order (a deque: walked every step, its pointers contiguous)
  std::unordered_map<uint64_t, Sequence*> by_id_;    // running and waiting
  std::vector<uint64_t> finished_;                   // to announce in the next plan
  // Running sequences with `cancelled` set, at least: next_plan() looks for them only while it is not zero.
  size_t cancelled_running_ = 0;
  // next_plan()'s working storage, kept for its capacity.
  std::vector<Sequence*> decoding_, prefilling_;  // the running sequences that decode, and that prefill
  std::vector<std::pair<Sequence*, int>> scheduled_;
  std::vector<parallel::SequenceStep> spare_steps_;  // of a recycled plan
  // The sequences of each plan in flight, in plan order, oldest plan first: complete() finds them here instead of
  // looking every id up.
  std::deque<std::vector<Sequence*>> plans_in_flight_;
  std::vector<Sequence*> spare_plan_record_;
};

}  // namespace tessera::runtime
