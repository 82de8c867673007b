#include "runtime/engine/scheduler.h"

#include <algorithm>
#include <cmath>

#include "kernels/base/error.h"
#include "runtime/engine/stage_executor.h"

namespace tessera::runtime {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void check_sampling(const parallel::SamplingSettings& s) {
  TESSERA_CHECK(std::isfinite(s.temperature) && s.temperature >= 0.0f, "temperature must be >= 0, got ", s.temperature);
  TESSERA_CHECK(s.top_p >= 0.0f && s.top_p <= 1.0f, "top_p must be in [0, 1], got ", s.top_p);
  TESSERA_CHECK(s.min_p >= 0.0f && s.min_p <= 1.0f, "min_p must be in [0, 1], got ", s.min_p);
  TESSERA_CHECK(s.top_k >= 0, "top_k must be >= 0, got ", s.top_k);
  TESSERA_CHECK(std::isfinite(s.repetition_penalty) && s.repetition_penalty > 0.0f,
                "repetition_penalty must be > 0, got ", s.repetition_penalty);
  TESSERA_CHECK(std::isfinite(s.frequency_penalty) && std::isfinite(s.presence_penalty),
                "frequency_penalty and presence_penalty must be finite");
  TESSERA_CHECK(s.logprobs >= -1 && s.logprobs <= 20, "logprobs must be in [0, 20], got ", int{s.logprobs});
  TESSERA_CHECK(s.prompt_logprobs >= -1 && s.prompt_logprobs <= 20, "prompt logprobs must be in [0, 20], got ",
                int{s.prompt_logprobs});
}

}  // namespace

Scheduler::Scheduler(int kv_blocks, int block_size, SchedulerLimits limits)
    : blocks_(kv_blocks, block_size, limits.prefix_caching), block_size_(block_size), limits_(limits) {
  TESSERA_CHECK(limits.max_sequences >= 1, "max_sequences must be >= 1, got ", limits.max_sequences);
  TESSERA_CHECK(limits.max_step_tokens >= limits.max_sequences, "max_step_tokens (", limits.max_step_tokens,
                ") must be at least max_sequences (", limits.max_sequences, "): every running sequence decodes a token");
}

uint64_t Scheduler::submit(GenerationRequest request) {
  TESSERA_CHECK(!request.prompt.empty(), "the prompt is empty: nothing to generate from");
  TESSERA_CHECK(request.max_new_tokens >= 1, "max_new_tokens must be >= 1, got ", request.max_new_tokens);
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_new_tokens;
  TESSERA_CHECK(total <= limits_.max_sequence_length, "prompt of ", request.prompt.size(), " tokens plus ",
                request.max_new_tokens, " new tokens exceeds the maximum sequence length ",
                limits_.max_sequence_length);
  TESSERA_CHECK(blocks_for(total) <= blocks_.total_blocks(), "prompt of ", request.prompt.size(), " tokens plus ",
                request.max_new_tokens, " new tokens needs ", blocks_for(total), " KV blocks but the whole cache has ",
                blocks_.total_blocks());
  if (limits_.vocab_size > 0) {
    for (const int32_t id : request.prompt) {
      TESSERA_CHECK(id >= 0 && id < limits_.vocab_size, "prompt token id ", id, " is outside the vocabulary of ",
                    limits_.vocab_size);
    }
  }
  check_sampling(request.sampling);
  auto s = std::make_unique<Sequence>();
  s->id = next_id_++;
  s->tokens = request.prompt;
  s->prompt_length = static_cast<int>(request.prompt.size());
  request.sampling.prompt_length = s->prompt_length;
  s->request = std::move(request);
  s->submitted = Clock::now();
  const uint64_t id = s->id;
  by_id_[id] = s.get();
  waiting_.push_back(std::move(s));
  return id;
}

void Scheduler::cancel(uint64_t id) {
  const auto found = by_id_.find(id);
  if (found == by_id_.end()) return;
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (it->get() == found->second) {
      SequencePtr s = std::move(*it);
      waiting_.erase(it);
      finish(*s, "cancelled");
      return;
    }
  }
  if (!found->second->cancelled) ++cancelled_running_;
  found->second->cancelled = true;  // running: ends at the next plan, before it costs another step
}

void Scheduler::fail_all(const std::string& message) {
  in_flight_ = 0;  // the engine abandons its plans in flight with them
  plans_in_flight_.clear();
  while (!waiting_.empty()) {
    SequencePtr s = std::move(waiting_.front());
    waiting_.pop_front();
    finish(*s, "error", message);
  }
  while (!running_.empty()) {
    SequencePtr s = std::move(running_.front());
    running_.pop_front();
    finish(*s, "error", message);
  }
  cancelled_running_ = 0;
}

void Scheduler::finish(Sequence& s, const char* reason, const std::string& error) {
  GenerationResult result;
  result.tokens.assign(s.tokens.begin() + s.prompt_length, s.tokens.end());
  result.finish_reason = reason;
  result.error = error;
  result.prompt_tokens = s.prompt_length;
  result.cached_prompt_tokens = s.cached_prompt_tokens;
  result.preemptions = s.preemptions;
  const auto now = Clock::now();
  if (s.ever_admitted) result.queue_seconds = seconds_between(s.submitted, s.admitted);
  if (s.generated() > 0) {
    result.prefill_seconds = seconds_between(s.admitted, s.first_token);
    result.decode_seconds = seconds_between(s.first_token, now);
  }
  blocks_.release(s.blocks.span());
  s.blocks.clear();
  finished_.push_back(s.id);
  by_id_.erase(s.id);
  if (s.request.on_finish) s.request.on_finish(result);
}

void Scheduler::preempt(Sequence& s) {
  TESSERA_CHECK(!s.in_flight, "sequence ", s.id, " cannot be preempted while a plan in flight computes it");
  blocks_.release(s.blocks.span());
  s.blocks.clear();
  s.block_hashes.clear();
  s.computed = 0;
  s.history_reset = true;
  ++s.preemptions;
  ++stats_.preemptions;
  s.preempted_in = plan_counter_;
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    if (it->get() == &s) {
      waiting_.push_front(std::move(*it));
      running_.erase(it);
      return;
    }
  }
}

bool Scheduler::grow(Sequence& s, int tokens_after) {
  while (static_cast<int>(s.blocks.size()) < blocks_for(tokens_after)) {
    if (const auto block = blocks_.allocate()) {
      s.blocks.push_back(*block);
      continue;
    }
    // No block: preempt the latest admitted sequence that this plan has not scheduled yet (s itself if it is
    // the only one left).
    Sequence* victim = &s;
    for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
      Sequence* v = it->get();
      if (v != &s && v->scheduled_in != plan_counter_ && !v->in_flight) {
        victim = v;
        break;
      }
    }
    preempt(*victim);
    if (victim == &s) return false;
  }
  return true;
}

void Scheduler::fill_step(Sequence& s, int chunk, parallel::SequenceStep& step) {
  // Every field is written: a recycled step still holds the values of its last plan (test_scheduler's
  // RecycledPlansEqualFreshOnes compares the two).
  step.sequence_id = s.id;
  step.start_position = s.computed;
  step.new_tokens.assign(s.tokens.begin() + s.computed, s.tokens.begin() + s.computed + chunk);
  step.block_table = s.blocks;
  step.sample = s.computed + chunk == static_cast<int>(s.tokens.size());
  step.sampling = s.request.sampling;
  step.history_reset = step.sampling.penalized() && s.history_reset;
  if (step.history_reset) {
    step.history_prefix.assign(s.tokens.begin(), s.tokens.begin() + s.computed);
  } else {
    step.history_prefix.clear();
  }
  s.history_reset = false;
  if (step.sampling.prompt_logprobs >= 0 && s.computed + 1 < s.prompt_length) {
    const int end = std::min(s.computed + chunk + 1, s.prompt_length);
    step.prompt_logprob_targets.assign(s.tokens.begin() + s.computed + 1, s.tokens.begin() + end);
  } else {
    step.prompt_logprob_targets.clear();
  }
}

bool Scheduler::admit_front(int& budget, std::vector<std::pair<Sequence*, int>>& scheduled) {
  Sequence& w = *waiting_.front();
  if (w.preempted_in == plan_counter_) return false;  // not back in the step that just preempted it
  const auto B = static_cast<size_t>(block_size_);
  if (w.request.sibling_group != 0 && blocks_.prefix_caching()) {
    // Wait while a sibling is still computing the prompt blocks this one could take from the cache.
    const int shareable = static_cast<int>((static_cast<size_t>(w.prompt_length) - 1) / B * B);
    for (const SequencePtr& r : running_) {
      if (r->request.sibling_group == w.request.sibling_group && r->computed < shareable) return false;
    }
  }
  // At least one token is computed: its logits give the next token.
  int max_cached = static_cast<int>((w.tokens.size() - 1) / B);
  if (w.request.sampling.prompt_logprobs >= 0) max_cached = 0;
  std::vector<uint64_t> hashes;
  std::vector<int32_t> cached = blocks_.acquire_prefix(w.tokens, max_cached, hashes);
  const int start = static_cast<int>(cached.size() * B);
  const int chunk = std::min(static_cast<int>(w.tokens.size()) - start, budget);
  const int need = blocks_for(start + chunk) - static_cast<int>(cached.size());
  if (need > blocks_.free_blocks()) {
    blocks_.release(cached);
    return false;
  }
  for (int i = 0; i < need; ++i) cached.push_back(*blocks_.allocate());
  w.blocks = std::move(cached);
  w.block_hashes = std::move(hashes);
  w.computed = start;
  w.history_reset = true;
  if (!w.ever_admitted) {
    w.ever_admitted = true;
    w.admitted = Clock::now();
    w.cached_prompt_tokens = std::min(start, w.prompt_length);
    stats_.prompt_tokens += static_cast<uint64_t>(w.prompt_length);
    if (blocks_.prefix_caching()) {
      stats_.prefix_query_tokens += static_cast<uint64_t>(w.prompt_length);
      stats_.prefix_hit_tokens += static_cast<uint64_t>(w.cached_prompt_tokens);
    }
  }
  w.scheduled_in = plan_counter_;
  budget -= chunk;
  scheduled.emplace_back(&w, chunk);
  running_.push_back(std::move(waiting_.front()));
  waiting_.pop_front();
  return true;
}

parallel::StepPlan Scheduler::next_plan() {
  ++plan_counter_;
  // Cancelled sequences end before they cost another step (once no plan in flight computes them).
  for (auto it = running_.begin(); cancelled_running_ > 0 && it != running_.end();) {
    if ((*it)->cancelled && !(*it)->in_flight) {
      SequencePtr s = std::move(*it);
      it = running_.erase(it);
      --cancelled_running_;
      finish(*s, "cancelled");
    } else {
      ++it;
    }
  }
  int budget = limits_.max_step_tokens;
  // This plan's share of the sequences that can run, so that up to micro_batches plans split them evenly.
  const size_t active = std::min(running_.size() + waiting_.size(), static_cast<size_t>(limits_.max_sequences));
  const size_t micro_batches = static_cast<size_t>(std::max(1, limits_.micro_batches));
  const size_t share = std::max<size_t>(1, (active + micro_batches - 1) / micro_batches);
  std::vector<std::pair<Sequence*, int>>& scheduled = scheduled_;
  scheduled.clear();
  // Decode first, then prefill chunks, each in admission order. One walk over running_ sorts them; the lists are
  // snapshots because grow() may move later sequences out of running_ (preemption), which the checks below see.
  decoding_.clear();
  prefilling_.clear();
  for (const SequencePtr& s : running_) {
    if (s->in_flight) continue;
    (static_cast<int>(s->tokens.size()) - s->computed == 1 ? decoding_ : prefilling_).push_back(s.get());
  }
  for (const std::vector<Sequence*>* pass : {&decoding_, &prefilling_}) {
    for (Sequence* s : *pass) {
      if (scheduled.size() >= share) break;
      if (s->preempted_in == plan_counter_ || s->scheduled_in == plan_counter_) continue;
      const int remaining = static_cast<int>(s->tokens.size()) - s->computed;
      const int chunk = std::min(remaining, budget);
      if (chunk <= 0) continue;
      if (!grow(*s, s->computed + chunk)) continue;  // it was preempted itself
      s->scheduled_in = plan_counter_;
      budget -= chunk;
      scheduled.emplace_back(s, chunk);
    }
  }
  while (!waiting_.empty() && static_cast<int>(running_.size()) < limits_.max_sequences && budget > 0 &&
         scheduled.size() < share) {
    if (!admit_front(budget, scheduled)) break;
  }
  parallel::StepPlan plan;
  plan.finished = std::move(finished_);
  finished_.clear();
  plan.sequences = std::move(spare_steps_);
  spare_steps_.clear();
  plan.sequences.resize(scheduled.size());
  for (size_t i = 0; i < scheduled.size(); ++i) {
    auto [s, chunk] = scheduled[i];
    fill_step(*s, chunk, plan.sequences[i]);
    s->in_flight = true;
  }
  in_flight_ += scheduled.size();
  if (!scheduled.empty()) {
    std::vector<Sequence*> record = std::move(spare_plan_record_);
    record.clear();
    for (const auto& [s, chunk] : scheduled) record.push_back(s);
    plans_in_flight_.push_back(std::move(record));
  }
  return plan;
}

void Scheduler::recycle(parallel::StepPlan&& plan) {
  if (plan.sequences.capacity() <= spare_steps_.capacity()) return;
  // The block tables go now: a reference kept here would make the next grow() copy a table for nothing.
  for (parallel::SequenceStep& s : plan.sequences) s.block_table.clear();
  spare_steps_ = std::move(plan.sequences);
}

void Scheduler::publish_full_blocks(Sequence& s) {
  const auto B = static_cast<size_t>(block_size_);
  while ((s.block_hashes.size() + 1) * B <= static_cast<size_t>(s.computed)) {
    const size_t i = s.block_hashes.size();
    const uint64_t parent = i == 0 ? PrefixCache::kRootHash : s.block_hashes[i - 1];
    s.block_hashes.push_back(
        blocks_.publish(s.blocks[i], parent, std::span<const int32_t>(s.tokens).subspan(i * B, B)));
  }
}

void Scheduler::complete(const parallel::StepPlan& plan, const std::vector<StepOutput>& outputs) {
  if (plan.sequences.empty()) {
    TESSERA_CHECK(outputs.empty(), "step ", plan.step_index, " ran no sequences but returned ", outputs.size(),
                  " outputs");
    return;
  }
  TESSERA_CHECK(!plans_in_flight_.empty(), "step ", plan.step_index, " completed, but no plan is in flight");
  std::vector<Sequence*> record = std::move(plans_in_flight_.front());
  plans_in_flight_.pop_front();
  TESSERA_CHECK(record.size() == plan.sequences.size(), "step ", plan.step_index, " has ", plan.sequences.size(),
                " sequences but the oldest plan in flight has ", record.size(), ": plans complete in the order made");
  size_t next = 0;
  for (size_t k = 0; k < plan.sequences.size(); ++k) {
    const parallel::SequenceStep& step = plan.sequences[k];
    TESSERA_CHECK(record[k]->id == step.sequence_id, "step ", plan.step_index, " ran sequence ", step.sequence_id,
                  " where the oldest plan in flight has sequence ", record[k]->id,
                  ": plans complete in the order made");
    Sequence& s = *record[k];
    TESSERA_CHECK(s.in_flight, "step ", plan.step_index, " completed sequence ", step.sequence_id,
                  " that no plan in flight computes");
    s.in_flight = false;
    --in_flight_;
    s.computed += static_cast<int>(step.new_tokens.size());
    publish_full_blocks(s);
    if (!reports_output(step)) continue;
    TESSERA_CHECK(next < outputs.size() && outputs[next].sequence_id == step.sequence_id, "step ", plan.step_index,
                  " returned no output for sequence ", step.sequence_id);
    const StepOutput& o = outputs[next++];
    if (s.cancelled) continue;  // cancelled while in flight: nobody wants its output; the next plan ends it
    for (size_t i = 0; i < o.prompt_logprobs.size(); ++i) {
      const int position = step.start_position + 1 + static_cast<int>(i);
      if (position != s.prompt_logprobs_reported || position >= s.prompt_length) continue;  // a recomputation
      ++s.prompt_logprobs_reported;
      if (s.request.on_prompt_logprobs) s.request.on_prompt_logprobs(position, o.prompt_logprobs[i]);
    }
    if (!step.sample) continue;
    TESSERA_CHECK(o.sampled, "step ", plan.step_index, " sampled no token for sequence ", step.sequence_id);
    if (s.generated() == 0) s.first_token = Clock::now();
    s.tokens.push_back(o.token);
    ++stats_.generated_tokens;
    if (s.request.on_token) s.request.on_token(TokenEvent{o.token, o.logprobs ? &*o.logprobs : nullptr});
    const auto& stops = s.request.stop_ids;
    const char* reason = nullptr;
    if (std::find(stops.begin(), stops.end(), o.token) != stops.end()) {
      reason = "stop";
    } else if (s.generated() >= s.request.max_new_tokens) {
      reason = "length";
    }
    if (reason) {
      Sequence* done = &s;
      SequencePtr owned;
      for (auto it = running_.begin(); it != running_.end(); ++it) {
        if (it->get() == done) {
          owned = std::move(*it);
          running_.erase(it);
          break;
        }
      }
      TESSERA_CHECK(owned != nullptr, "sequence ", step.sequence_id, " finished but is not running");
      finish(*owned, reason);
    }
  }
  TESSERA_CHECK(next == outputs.size(), "step ", plan.step_index, " returned ", outputs.size(), " outputs for ", next,
                " reporting sequences");
  spare_plan_record_ = std::move(record);
}

}  // namespace tessera::runtime
