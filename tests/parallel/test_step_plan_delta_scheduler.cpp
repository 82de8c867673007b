// The delta control plane (parallel/step_plan_delta.h) over the plans of the real scheduler, driven without a model
// (the test plays the sampling rank with made-up tokens): mixed traffic with prefix-cache hits, sibling requests,
// preemption in a small KV pool, cancellation, penalties with history prefixes and prompt logprobs, heartbeats and
// shutdown. Every plan must come out of every follower's decoder equal to what the leader planned, and with 64
// running sequences the delta messages must be at least 4x smaller than the full ones.
// It also checks the delta seeds of the step plan fuzzer (tests/fuzz/corpus/fuzz_step_plan/delta_*.bin), which it
// writes with TESSERA_UPDATE_FUZZ_SEEDS=1.
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <random>

#include "kernels/base/error.h"
#include "parallel/step_plan_delta.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/stage_executor.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

using parallel::SequenceStep;
using parallel::StepPlan;
using parallel::StepPlanDecoder;
using parallel::StepPlanEncoder;

// Plays the sampling rank: a token that depends on the position and the previous token only, a row of prompt
// logprobs per target, logprobs when asked.
std::vector<StepOutput> fake_outputs(const StepPlan& plan) {
  std::vector<StepOutput> out;
  for (const SequenceStep& s : plan.sequences) {
    if (!reports_output(s)) continue;
    StepOutput o;
    o.sequence_id = s.sequence_id;
    o.sampled = s.sample;
    const int32_t last = s.start_position + static_cast<int32_t>(s.new_tokens.size()) - 1;
    o.token = 1 + (last * 31 + s.new_tokens.back() * 7) % 9973;
    if (s.sampling.prompt_logprobs >= 0) {
      for (const int32_t target : s.prompt_logprob_targets) {
        kernels::cpu::RowLogprobs row;
        row.chosen.id = target;
        o.prompt_logprobs.push_back(row);
      }
    }
    if (s.sample && s.sampling.logprobs >= 0) {
      o.logprobs.emplace();
      o.logprobs->chosen.id = o.token;
    }
    out.push_back(std::move(o));
  }
  return out;
}

// What the plans exercised, to show that each scenario tested what it claims.
struct Coverage {
  size_t plans = 0, heartbeats = 0, sequences = 0, finished = 0, history_prefixes = 0, prompt_targets = 0;
  size_t appended_tables = 0, replaced_tables = 0, new_sequences = 0;
  size_t delta_bytes = 0, full_bytes = 0;
};

// The leader (scheduler + encoder) and two followers (decoders), numbering plans like the engine.
class ControlPlane {
 public:
  explicit ControlPlane(Scheduler& scheduler) : scheduler_(scheduler) {}

  // Broadcasts `plan` (numbered) and checks what every follower decodes.
  StepPlan send(StepPlan plan) {
    plan.step_index = next_step_++;
    const std::vector<std::byte> bytes = encoder_.encode(plan);
    for (StepPlanDecoder& follower : followers_) {
      const StepPlan decoded = follower.decode(bytes);
      EXPECT_EQ(decoded, plan) << "step " << plan.step_index;
      EXPECT_EQ(follower.mirror().digest(), encoder_.mirror().digest()) << "step " << plan.step_index;
    }
    if (messages_) messages_->push_back(bytes);
    observe(plan, bytes.size());
    return plan;
  }
  // One engine step: plan, broadcast, "execute", complete.
  void step() {
    const StepPlan plan = send(scheduler_.next_plan());
    scheduler_.complete(plan, fake_outputs(plan));
  }
  // What Engine::advance does with `depth` micro-batches: launch plans until `depth` are in flight or nothing can
  // run now (a plan with only finished ids is sent and not waited for), then complete the oldest.
  void advance(size_t depth) {
    while (in_flight_.size() < depth) {
      StepPlan plan = scheduler_.next_plan();
      if (plan.sequences.empty() && plan.finished.empty()) break;
      const bool work = !plan.sequences.empty();
      if (work) plan.micro_batch = static_cast<uint8_t>(launched_++ % depth);
      plan = send(std::move(plan));
      if (!work) break;
      in_flight_.push_back(std::move(plan));
      max_in_flight_ = std::max(max_in_flight_, in_flight_.size());
    }
    if (in_flight_.empty()) return;
    const StepPlan oldest = std::move(in_flight_.front());
    in_flight_.pop_front();
    scheduler_.complete(oldest, fake_outputs(oldest));
  }
  bool busy() const { return !scheduler_.idle() || !in_flight_.empty(); }
  size_t max_in_flight() const { return max_in_flight_; }
  void heartbeat() {
    StepPlan plan;
    plan.heartbeat = true;
    send(plan);
  }
  void shutdown() {
    StepPlan plan;
    plan.shutdown = true;
    send(plan);
  }
  void run_until_idle(int max_steps = 100000) {
    for (int i = 0; i < max_steps && !scheduler_.idle(); ++i) step();
    ASSERT_TRUE(scheduler_.idle());
  }
  const Coverage& coverage() const { return coverage_; }
  void reset_sizes() { coverage_.delta_bytes = coverage_.full_bytes = coverage_.plans = 0; }
  void record_messages(std::vector<std::vector<std::byte>>* messages) { messages_ = messages; }
  const StepPlanEncoder& encoder() const { return encoder_; }

 private:
  void observe(const StepPlan& plan, size_t delta_bytes) {
    Coverage& c = coverage_;
    ++c.plans;
    c.heartbeats += plan.heartbeat ? 1 : 0;
    c.sequences += plan.sequences.size();
    c.finished += plan.finished.size();
    c.delta_bytes += delta_bytes;
    c.full_bytes += parallel::encode_step_plan(plan).size();
    for (const SequenceStep& s : plan.sequences) {
      c.history_prefixes += s.history_prefix.empty() ? 0 : 1;
      c.prompt_targets += s.prompt_logprob_targets.empty() ? 0 : 1;
      const auto known = tables_.find(s.sequence_id);
      if (known == tables_.end()) {
        ++c.new_sequences;
      } else if (!std::equal(known->second.begin(), known->second.end(), s.block_table.begin(), s.block_table.end())) {
        const auto& old = known->second;
        const bool prefix = old.size() <= s.block_table.size() &&
                            std::equal(old.begin(), old.end(), s.block_table.begin());
        ++(prefix ? c.appended_tables : c.replaced_tables);
      }
      tables_[s.sequence_id].assign(s.block_table.begin(), s.block_table.end());  // a copy of its own
    }
    for (const uint64_t id : plan.finished) tables_.erase(id);
  }

  Scheduler& scheduler_;
  StepPlanEncoder encoder_;
  std::vector<StepPlanDecoder> followers_ = std::vector<StepPlanDecoder>(2);
  uint64_t next_step_ = 0;
  Coverage coverage_;
  std::map<uint64_t, std::vector<int32_t>> tables_;
  std::vector<std::vector<std::byte>>* messages_ = nullptr;
  std::deque<StepPlan> in_flight_;
  uint64_t launched_ = 0;
  size_t max_in_flight_ = 0;
};

// Requests of every kind, drawn from `rng`: prompts that share one of three prefixes (prefix-cache hits), sampling
// or greedy, penalties (history prefixes), prompt logprobs (echo), logprobs, stop ids, sibling pairs.
void submit_mixed(Scheduler& scheduler, std::mt19937& rng, std::vector<uint64_t>& ids, uint64_t& group) {
  std::uniform_int_distribution<int> pick(0, 99);
  static const std::vector<std::vector<int32_t>> prefixes = {
      {11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27},
      {500, 501, 502, 503, 504, 505, 506, 507, 508, 509},
      {30000, 30001, 30002, 30003, 30004, 30005, 30006, 30007, 30008, 30009, 30010, 30011, 30012}};
  GenerationRequest r;
  r.prompt = prefixes[static_cast<size_t>(pick(rng) % 3)];
  const int suffix = 1 + pick(rng) % 12;
  for (int i = 0; i < suffix; ++i) r.prompt.push_back(100 + pick(rng) * 37);
  r.max_new_tokens = 3 + pick(rng) % 30;
  const int kind = pick(rng);
  if (kind < 30) {
    r.sampling.temperature = 0.7f;
    r.sampling.top_k = 40;
    r.sampling.top_p = 0.9f;
    r.sampling.seed = static_cast<uint64_t>(pick(rng));
  }
  if (kind >= 20 && kind < 45) {
    r.sampling.repetition_penalty = 1.2f;
    r.sampling.presence_penalty = 0.5f;
  }
  if (kind >= 45 && kind < 55) r.sampling.prompt_logprobs = 2;
  if (kind >= 50 && kind < 65) r.sampling.logprobs = 3;
  if (kind >= 65 && kind < 75) r.stop_ids = {1 + pick(rng) % 50, 7};
  const int copies = kind >= 85 ? 2 : 1;  // the n choices of one API request
  if (copies > 1) r.sibling_group = ++group;
  for (int c = 0; c < copies; ++c) ids.push_back(scheduler.submit(r));
}

TEST(StepPlanDeltaScheduler, MixedTrafficRoundTripsEveryStep) {
  // A small KV pool (48 blocks of 4 tokens for 8 sequences of up to ~60 tokens) so that sequences get preempted.
  SchedulerLimits limits;
  limits.max_sequences = 8;
  limits.max_step_tokens = 48;
  limits.max_sequence_length = 128;
  Scheduler scheduler(/*kv_blocks=*/48, /*block_size=*/4, limits);
  ControlPlane plane(scheduler);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<uint64_t> ids;
  uint64_t group = 0;
  size_t cancelled = 0;
  for (int t = 0; t < 600; ++t) {
    // Bursts of arrivals, then quiet spells in which the engine drains and sends heartbeats.
    if (t % 200 < 150 && pick(rng) < 35) submit_mixed(scheduler, rng, ids, group);
    if (pick(rng) < 4 && !ids.empty()) {  // cancel a request, queued, running or already finished
      scheduler.cancel(ids[static_cast<size_t>(pick(rng)) % ids.size()]);
      ++cancelled;
    }
    if (scheduler.idle()) {
      plane.heartbeat();
    } else {
      plane.step();
    }
    if (HasFatalFailure() || HasFailure()) return;
  }
  plane.run_until_idle();
  plane.heartbeat();
  plane.shutdown();
  EXPECT_EQ(plane.encoder().mirror().size(), 0u) << "every finished sequence left the mirror";

  const Coverage& c = plane.coverage();
  const SchedulerStats& stats = scheduler.stats();
  std::printf("%zu plans (%zu heartbeats), %zu sequence steps, %zu new, %zu appended and %zu replaced tables, "
              "%zu finished, %zu history prefixes, %zu prompt-logprob steps; %llu preemptions, %llu prefix-hit "
              "tokens, %zu cancellations; %zu delta bytes vs %zu full bytes\n",
              c.plans, c.heartbeats, c.sequences, c.new_sequences, c.appended_tables, c.replaced_tables, c.finished,
              c.history_prefixes, c.prompt_targets, static_cast<unsigned long long>(stats.preemptions),
              static_cast<unsigned long long>(stats.prefix_hit_tokens), cancelled, c.delta_bytes, c.full_bytes);
  EXPECT_GT(stats.preemptions, 0u);
  EXPECT_GT(stats.prefix_hit_tokens, 0u);
  EXPECT_GT(c.heartbeats, 1u);
  EXPECT_GT(c.history_prefixes, 0u);
  EXPECT_GT(c.prompt_targets, 0u);
  EXPECT_GT(c.appended_tables, 0u);
  EXPECT_GT(c.replaced_tables, 0u);
  EXPECT_GT(cancelled, 0u);
  EXPECT_LT(c.delta_bytes, c.full_bytes);
}

TEST(StepPlanDeltaScheduler, MicroBatchesInFlightRoundTripEveryStep) {
  // Three plans in flight at once, as the engine keeps them with pp = 3: each sequence in at most one of them,
  // preemption only of sequences not in flight, cancelled ones ending once their plan completes.
  SchedulerLimits limits;
  limits.max_sequences = 9;
  limits.max_step_tokens = 48;
  limits.max_sequence_length = 128;
  limits.micro_batches = 3;
  Scheduler scheduler(/*kv_blocks=*/56, /*block_size=*/4, limits);
  ControlPlane plane(scheduler);
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<uint64_t> ids;
  uint64_t group = 0;
  size_t cancelled = 0;
  for (int t = 0; t < 600; ++t) {
    if (t % 200 < 150 && pick(rng) < 40) submit_mixed(scheduler, rng, ids, group);
    if (pick(rng) < 4 && !ids.empty()) {
      scheduler.cancel(ids[static_cast<size_t>(pick(rng)) % ids.size()]);
      ++cancelled;
    }
    if (plane.busy()) {
      plane.advance(3);
    } else {
      plane.heartbeat();
    }
    if (HasFatalFailure() || HasFailure()) return;
  }
  while (plane.busy()) plane.advance(3);
  plane.shutdown();
  EXPECT_EQ(plane.encoder().mirror().size(), 0u);
  const Coverage& c = plane.coverage();
  std::printf("%zu plans (%zu heartbeats), up to %zu in flight, %zu sequence steps, %zu replaced tables, "
              "%llu preemptions, %zu cancellations; %zu delta bytes vs %zu full bytes\n",
              c.plans, c.heartbeats, plane.max_in_flight(), c.sequences, c.replaced_tables,
              static_cast<unsigned long long>(scheduler.stats().preemptions), cancelled, c.delta_bytes,
              c.full_bytes);
  EXPECT_EQ(plane.max_in_flight(), 3u);
  EXPECT_GT(scheduler.stats().preemptions, 0u);
  EXPECT_GT(c.replaced_tables, 0u);
  EXPECT_GT(c.history_prefixes, 0u);
  EXPECT_GT(c.prompt_targets, 0u);
  EXPECT_GT(cancelled, 0u);
}

TEST(StepPlanDeltaScheduler, ATinyPoolPreemptsOverAndOver) {
  // 10 blocks of 2 tokens: every sequence needs most of the pool, so they preempt each other constantly and come
  // back with new, shorter tables (the not-a-prefix case), some of them penalized: those that find their own
  // blocks still in the prefix cache resume with a history prefix.
  SchedulerLimits limits;
  limits.max_sequences = 4;
  limits.max_step_tokens = 16;
  limits.max_sequence_length = 20;
  Scheduler scheduler(/*kv_blocks=*/10, /*block_size=*/2, limits);
  ControlPlane plane(scheduler);
  for (int i = 0; i < 12; ++i) {
    GenerationRequest r;
    for (int j = 0; j < 3 + i % 4; ++j) r.prompt.push_back(40 + i * 10 + j);
    r.max_new_tokens = 8 + i % 5;
    if (i % 3 == 0) r.sampling.repetition_penalty = 1.5f;
    if (i % 4 == 1) r.sampling.frequency_penalty = 0.25f;
    scheduler.submit(r);
  }
  plane.run_until_idle();
  plane.shutdown();
  const Coverage& c = plane.coverage();
  std::printf("%zu plans, %llu preemptions, %zu replaced tables, %zu history prefixes\n", c.plans,
              static_cast<unsigned long long>(scheduler.stats().preemptions), c.replaced_tables, c.history_prefixes);
  EXPECT_GE(scheduler.stats().preemptions, 5u);
  EXPECT_GT(c.replaced_tables, 0u);
  EXPECT_GT(c.history_prefixes, 0u);
  EXPECT_EQ(plane.encoder().mirror().size(), 0u);
}

TEST(StepPlanDeltaScheduler, SixtyFourRunningSequencesCostAQuarterOrLess) {
  // 64 sequences with 200-token prompts (ids across a 32k vocabulary) decoding, 16-token blocks.
  constexpr int kSequences = 64, kPrompt = 200, kNew = 400, kBlock = 16;
  SchedulerLimits limits;
  limits.max_sequences = kSequences;
  limits.max_step_tokens = 2048;
  limits.max_sequence_length = kPrompt + kNew;
  Scheduler scheduler(kSequences * (kPrompt + kNew) / kBlock + kSequences, kBlock, limits);
  ControlPlane plane(scheduler);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> token(0, 31999);
  for (int i = 0; i < kSequences; ++i) {
    GenerationRequest r;
    for (int j = 0; j < kPrompt; ++j) r.prompt.push_back(token(rng));
    r.max_new_tokens = kNew;
    r.sampling.temperature = 0.8f;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = static_cast<uint64_t>(i);
    scheduler.submit(r);
  }
  while (scheduler.running() < static_cast<size_t>(kSequences) || scheduler.waiting() > 0) plane.step();
  plane.step();  // the last prefill chunk
  const Coverage prefill = plane.coverage();
  plane.reset_sizes();
  for (int i = 0; i < 256; ++i) {
    plane.step();
    ASSERT_EQ(scheduler.running(), static_cast<size_t>(kSequences));
  }
  const Coverage& c = plane.coverage();
  const double delta = static_cast<double>(c.delta_bytes) / static_cast<double>(c.plans);
  const double full = static_cast<double>(c.full_bytes) / static_cast<double>(c.plans);
  std::printf("prefill: %zu plans, %zu delta bytes vs %zu full bytes\n", prefill.plans, prefill.delta_bytes,
              prefill.full_bytes);
  std::printf("64 decoding sequences, %zu steps: %.1f delta bytes per step vs %.1f full bytes per step (%.1fx)\n",
              c.plans, delta, full, full / delta);
  EXPECT_GE(full, 4.0 * delta);
}

// The fuzzer's delta inputs (tests/fuzz/fuzz_step_plan.cpp): a stream of frames, each a u16 little-endian length
// and that many bytes of one message, for one fresh decoder.
std::vector<std::byte> frames(const std::vector<std::vector<std::byte>>& messages) {
  std::vector<std::byte> out;
  for (const auto& m : messages) {
    if (m.size() > 0xffff) continue;
    out.push_back(static_cast<std::byte>(m.size() & 0xff));
    out.push_back(static_cast<std::byte>(m.size() >> 8));
    out.insert(out.end(), m.begin(), m.end());
  }
  return out;
}

std::map<std::string, std::vector<std::byte>> delta_seeds() {
  std::map<std::string, std::vector<std::byte>> seeds;
  {  // preemption and penalties
    SchedulerLimits limits;
    limits.max_sequences = 3;
    limits.max_step_tokens = 8;
    limits.max_sequence_length = 12;
    Scheduler scheduler(6, 2, limits);
    std::vector<std::vector<std::byte>> messages;
    ControlPlane plane(scheduler);
    plane.record_messages(&messages);
    for (int i = 0; i < 4; ++i) {
      GenerationRequest r;
      r.prompt = {5 + i, 6, 7};
      r.max_new_tokens = 4;
      if (i % 2 == 0) r.sampling.repetition_penalty = 1.3f;
      scheduler.submit(r);
    }
    plane.run_until_idle();
    plane.heartbeat();
    plane.shutdown();
    seeds["delta_preemption.bin"] = frames(messages);
  }
  {  // prefix hits, prompt logprobs, logprobs, cancellation
    SchedulerLimits limits;
    limits.max_sequences = 4;
    limits.max_step_tokens = 16;
    limits.max_sequence_length = 32;
    Scheduler scheduler(32, 4, limits);
    std::vector<std::vector<std::byte>> messages;
    ControlPlane plane(scheduler);
    plane.record_messages(&messages);
    GenerationRequest r;
    r.prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 300};
    r.max_new_tokens = 3;
    r.sampling.temperature = 0.5f;
    r.sampling.logprobs = 2;
    scheduler.submit(r);
    plane.step();
    r.prompt.back() = 20000;
    scheduler.submit(r);
    r.sampling.prompt_logprobs = 1;
    const uint64_t echo = scheduler.submit(r);
    plane.step();
    plane.step();
    scheduler.cancel(echo);
    plane.run_until_idle();
    seeds["delta_prefix_logprobs.bin"] = frames(messages);
  }
  return seeds;
}

TEST(StepPlanDeltaFuzzSeeds, EveryFrameOfEverySeedDecodes) {
  const auto dir = testing::source_dir() / "tests/fuzz/corpus/fuzz_step_plan";
  const bool update = std::getenv("TESSERA_UPDATE_FUZZ_SEEDS") != nullptr;
  for (const auto& [name, bytes] : delta_seeds()) {
    if (update) {
      std::ofstream(dir / name, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    std::ifstream in(dir / name, std::ios::binary | std::ios::ate);
    ASSERT_TRUE(in) << (dir / name) << " is missing: write the seeds with TESSERA_UPDATE_FUZZ_SEEDS=1";
    std::string raw(static_cast<size_t>(in.tellg()), '\0');
    in.seekg(0);
    in.read(raw.data(), static_cast<std::streamsize>(raw.size()));
    StepPlanDecoder decoder;
    size_t at = 0, decoded = 0;
    while (at + 2 <= raw.size()) {
      const size_t n = static_cast<uint8_t>(raw[at]) | static_cast<size_t>(static_cast<uint8_t>(raw[at + 1])) << 8;
      ASSERT_LE(at + 2 + n, raw.size()) << name;
      const auto* data = reinterpret_cast<const std::byte*>(raw.data() + at + 2);
      try {
        decoder.decode(std::span(data, n));
      } catch (const Error& e) {
        FAIL() << name << ", frame " << decoded << ": " << e.what()
               << " (the wire format changed: rewrite the seeds with TESSERA_UPDATE_FUZZ_SEEDS=1)";
      }
      ++decoded;
      at += 2 + n;
    }
    EXPECT_EQ(at, raw.size()) << name;
    EXPECT_GE(decoded, 4u) << name;
  }
}

}  // namespace
}  // namespace tessera::runtime
