#include "runtime/engine/scheduler.h"

#include <algorithm>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Scheduler::Scheduler(int kv_blocks, int block_size, SchedulerLimits limits)
    : blocks_(kv_blocks), block_size_(block_size), limits_(limits) {
  TESSERA_CHECK(block_size >= 1, "KV block size must be >= 1, got ", block_size);
  TESSERA_CHECK(limits.max_sequences >= 1, "max_sequences must be >= 1, got ", limits.max_sequences);
  TESSERA_CHECK(limits.max_step_tokens >= limits.max_sequences, "max_step_tokens (", limits.max_step_tokens,
                ") must be at least max_sequences (", limits.max_sequences, "): every running sequence decodes a token");
}

int Scheduler::blocks_for(const GenerationRequest& request) const {
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_new_tokens;
  return static_cast<int>((total + block_size_ - 1) / block_size_);
}

uint64_t Scheduler::submit(GenerationRequest request) {
  TESSERA_CHECK(!request.prompt.empty(), "the prompt is empty: nothing to generate from");
  TESSERA_CHECK(request.max_new_tokens >= 1, "max_new_tokens must be >= 1, got ", request.max_new_tokens);
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_new_tokens;
  TESSERA_CHECK(total <= limits_.max_sequence_length, "prompt of ", request.prompt.size(), " tokens plus ",
                request.max_new_tokens, " new tokens exceeds the maximum sequence length ",
                limits_.max_sequence_length);
  TESSERA_CHECK(blocks_for(request) <= blocks_.total_blocks(), "request needs ", blocks_for(request),
                " KV blocks but the cache has ", blocks_.total_blocks());
  Sequence sequence;
  sequence.id = next_id_++;
  sequence.request = std::move(request);
  sequence.submitted = Clock::now();
  waiting_.push_back(std::move(sequence));
  return waiting_.back().id;
}

void Scheduler::cancel(uint64_t id) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (it->id == id) {
      Sequence sequence = std::move(*it);
      waiting_.erase(it);
      GenerationResult result;
      result.finish_reason = "cancelled";
      result.prompt_tokens = static_cast<int>(sequence.request.prompt.size());
      if (sequence.request.on_finish) sequence.request.on_finish(result);
      return;
    }
  }
  auto running = running_.find(id);
  if (running != running_.end()) running->second.cancelled = true;
}

void Scheduler::admit() {
  while (!waiting_.empty() && static_cast<int>(running_.size()) < limits_.max_sequences &&
         blocks_for(waiting_.front().request) <= blocks_.free_blocks()) {
    Sequence sequence = std::move(waiting_.front());
    waiting_.pop_front();
    sequence.blocks = blocks_.allocate(blocks_for(sequence.request));
    sequence.admitted = Clock::now();
    const uint64_t id = sequence.id;
    running_.emplace(id, std::move(sequence));
  }
}

void Scheduler::finish(Sequence& sequence, const char* reason) {
  GenerationResult result;
  result.tokens = sequence.generated;
  result.finish_reason = reason;
  result.prompt_tokens = static_cast<int>(sequence.request.prompt.size());
  const auto now = Clock::now();
  result.queue_seconds = seconds_between(sequence.submitted, sequence.admitted);
  if (!sequence.generated.empty()) {
    result.prefill_seconds = seconds_between(sequence.admitted, sequence.first_token);
    result.decode_seconds = seconds_between(sequence.first_token, now);
  }
  blocks_.release(sequence.blocks);
  finished_.push_back(sequence.id);
  if (sequence.request.on_finish) sequence.request.on_finish(result);
}

parallel::StepPlan Scheduler::next_plan() {
  // Cancelled sequences end before they cost another step.
  for (auto it = running_.begin(); it != running_.end();) {
    if (it->second.cancelled) {
      finish(it->second, "cancelled");
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
  admit();
  parallel::StepPlan plan;
  plan.finished = std::move(finished_);
  finished_.clear();
  int budget = limits_.max_step_tokens;
  // Decode first: running sequences must not starve behind long prompts.
  for (auto& [id, s] : running_) {
    if (s.prefilled < static_cast<int>(s.request.prompt.size())) continue;
    parallel::SequenceStep step;
    step.sequence_id = id;
    step.start_position = static_cast<int32_t>(s.request.prompt.size() + s.generated.size() - 1);
    step.new_tokens = {s.generated.back()};
    step.block_table = s.blocks;
    step.sampling = s.request.sampling;
    plan.sequences.push_back(std::move(step));
    --budget;
  }
  for (auto& [id, s] : running_) {
    const int remaining = static_cast<int>(s.request.prompt.size()) - s.prefilled;
    if (remaining <= 0 || budget <= 0) continue;
    const int chunk = std::min(remaining, budget);
    parallel::SequenceStep step;
    step.sequence_id = id;
    step.start_position = s.prefilled;
    step.new_tokens.assign(s.request.prompt.begin() + s.prefilled, s.request.prompt.begin() + s.prefilled + chunk);
    step.block_table = s.blocks;
    step.sampling = s.request.sampling;
    step.sample = chunk == remaining;  // only the prompt's last chunk yields the first token
    plan.sequences.push_back(std::move(step));
    budget -= chunk;
  }
  return plan;
}

void Scheduler::complete(const parallel::StepPlan& plan, const std::vector<SampledToken>& sampled) {
  size_t next = 0;
  for (const parallel::SequenceStep& step : plan.sequences) {
    auto it = running_.find(step.sequence_id);
    TESSERA_CHECK(it != running_.end(), "step ", plan.step_index, " ran sequence ", step.sequence_id,
                  " that the scheduler does not know");
    Sequence& s = it->second;
    if (s.prefilled < static_cast<int>(s.request.prompt.size())) s.prefilled += static_cast<int>(step.new_tokens.size());
    if (!step.sample) continue;
    TESSERA_CHECK(next < sampled.size() && sampled[next].sequence_id == step.sequence_id, "step ", plan.step_index,
                  " returned no token for sequence ", step.sequence_id);
    const int32_t token = sampled[next++].token;
    if (s.generated.empty()) s.first_token = Clock::now();
    s.generated.push_back(token);
    if (s.request.on_token) s.request.on_token(token);
    const auto& stops = s.request.stop_ids;
    const char* reason = nullptr;
    if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
      reason = "stop";
    } else if (static_cast<int>(s.generated.size()) >= s.request.max_new_tokens) {
      reason = "length";
    }
    if (reason) {
      finish(s, reason);
      running_.erase(it);
    }
  }
  TESSERA_CHECK(next == sampled.size(), "step ", plan.step_index, " returned ", sampled.size(), " tokens for ", next,
                " sampling sequences");
}

}  // namespace tessera::runtime
