// The leader's scheduler on its own (no model: the test plays the sampler): decode before prefill, chunked
// prefill under the step budget, KV blocks allocated as sequences grow, preemption by recomputation with the
// same tokens afterwards, prefix-cache reuse, sibling requests, finish reasons, cancellation, block release.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

#include "kernels/base/error.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/stage_executor.h"

namespace tessera::runtime {
namespace {

GenerationRequest request(int prompt_tokens, int max_new, std::vector<GenerationResult>* results = nullptr,
                          int32_t first = 100) {
  GenerationRequest r;
  for (int i = 0; i < prompt_tokens; ++i) r.prompt.push_back(first + i);
  r.max_new_tokens = max_new;
  if (results) r.on_finish = [results](const GenerationResult& g) { results->push_back(g); };
  return r;
}

// Plays the model: every sampling sequence gets token `token`.
std::vector<StepOutput> sample_all(const parallel::StepPlan& plan, int32_t token) {
  std::vector<StepOutput> out;
  for (const auto& s : plan.sequences) {
    if (reports_output(s)) {
      StepOutput o;
      o.sequence_id = s.sequence_id;
      o.sampled = s.sample;
      o.token = token;
      out.push_back(o);
    }
  }
  return out;
}

// A deterministic "model": the next token is a function of the position and the previous token only, like a real
// model whose output depends on the sequence and never on the batch.
int32_t model_token(int32_t position, int32_t previous) { return 1 + (position * 31 + previous * 7) % 97; }

std::vector<StepOutput> play_model(const parallel::StepPlan& plan) {
  std::vector<StepOutput> out;
  for (const auto& s : plan.sequences) {
    if (!reports_output(s)) continue;
    StepOutput o;
    o.sequence_id = s.sequence_id;
    o.sampled = s.sample;
    const int32_t last_position = s.start_position + static_cast<int32_t>(s.new_tokens.size()) - 1;
    o.token = model_token(last_position, s.new_tokens.back());
    out.push_back(o);
  }
  return out;
}

// Runs until idle; checks every plan's block tables against the blocks each sequence's positions need.
void run(Scheduler& scheduler, int block_size, int max_steps = 10000) {
  for (int i = 0; i < max_steps && !scheduler.idle(); ++i) {
    const parallel::StepPlan plan = scheduler.next_plan();
    for (const auto& s : plan.sequences) {
      const int64_t end = s.start_position + static_cast<int64_t>(s.new_tokens.size());
      ASSERT_GE(static_cast<int64_t>(s.block_table.size()) * block_size, end) << "sequence " << s.sequence_id;
    }
    scheduler.complete(plan, play_model(plan));
  }
  ASSERT_TRUE(scheduler.idle());
}

// Runs until idle the way a pipelined engine does: up to `depth` plans in flight, completed oldest first. Checks
// that no sequence is in two plans in flight at once and that each plan takes at most its share of the sequences.
void run_pipelined(Scheduler& scheduler, size_t depth, int max_steps = 10000) {
  std::deque<parallel::StepPlan> in_flight;
  std::set<uint64_t> computing;
  for (int i = 0; i < max_steps && (!scheduler.idle() || !in_flight.empty()); ++i) {
    while (in_flight.size() < depth) {
      parallel::StepPlan plan = scheduler.next_plan();
      if (plan.sequences.empty()) break;
      for (const auto& s : plan.sequences) {
        ASSERT_TRUE(computing.insert(s.sequence_id).second) << "sequence " << s.sequence_id << " is in two plans";
      }
      in_flight.push_back(std::move(plan));
    }
    if (in_flight.empty()) continue;
    const parallel::StepPlan plan = std::move(in_flight.front());
    in_flight.pop_front();
    for (const auto& s : plan.sequences) computing.erase(s.sequence_id);
    scheduler.complete(plan, play_model(plan));
  }
  ASSERT_TRUE(scheduler.idle());
  ASSERT_TRUE(in_flight.empty());
  EXPECT_EQ(scheduler.in_flight(), 0u);
}

TEST(Scheduler, PrefillThenDecodeUntilLength) {
  Scheduler scheduler(/*kv_blocks=*/8, /*block_size=*/4, {4, 64, 64});
  std::vector<GenerationResult> results;
  const uint64_t id = scheduler.submit(request(5, 3, &results));
  parallel::StepPlan plan = scheduler.next_plan();
  ASSERT_EQ(plan.sequences.size(), 1u);
  EXPECT_EQ(plan.sequences[0].sequence_id, id);
  EXPECT_EQ(plan.sequences[0].new_tokens.size(), 5u);
  EXPECT_EQ(plan.sequences[0].start_position, 0);
  EXPECT_EQ(plan.sequences[0].block_table.size(), 2u);  // on demand: ceil(5 / 4), not ceil((5 + 3) / 4)
  EXPECT_TRUE(plan.sequences[0].sample);
  EXPECT_EQ(plan.sequences[0].sampling.prompt_length, 5);
  scheduler.complete(plan, sample_all(plan, 7));
  for (int step = 1; step < 3; ++step) {
    plan = scheduler.next_plan();
    ASSERT_EQ(plan.sequences.size(), 1u);
    EXPECT_EQ(plan.sequences[0].new_tokens, std::vector<int32_t>{7});
    EXPECT_EQ(plan.sequences[0].start_position, 5 + step - 1);
    EXPECT_EQ(plan.sequences[0].block_table.size(), 2u);  // positions 5 and 6 fit the second block
    scheduler.complete(plan, sample_all(plan, 7));
  }
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].finish_reason, "length");
  EXPECT_EQ(results[0].tokens, (std::vector<int32_t>{7, 7, 7}));
  plan = scheduler.next_plan();  // announces the finished sequence to the ranks
  EXPECT_TRUE(plan.sequences.empty());
  EXPECT_EQ(plan.finished, std::vector<uint64_t>{id});
  EXPECT_TRUE(scheduler.idle());
  EXPECT_EQ(scheduler.blocks().used_blocks(), 0);
}

TEST(Scheduler, BlocksGrowAsTheSequenceDoes) {
  Scheduler scheduler(8, 4, {4, 64, 64});
  scheduler.submit(request(3, 10));
  std::vector<size_t> table_sizes;
  while (!scheduler.idle()) {
    const auto plan = scheduler.next_plan();
    if (!plan.sequences.empty()) table_sizes.push_back(plan.sequences[0].block_table.size());
    scheduler.complete(plan, sample_all(plan, 5));
  }
  // Positions 0-2 (prefill), then decode feeds positions 3..11: a new block at positions 4 and 8.
  EXPECT_EQ(table_sizes, (std::vector<size_t>{1, 1, 2, 2, 2, 2, 3, 3, 3, 3}));
}

TEST(Scheduler, StopTokenEndsTheSequence) {
  Scheduler scheduler(8, 4, {4, 64, 64});
  std::vector<GenerationResult> results;
  auto r = request(3, 10, &results);
  r.stop_ids = {2};
  scheduler.submit(std::move(r));
  auto plan = scheduler.next_plan();
  scheduler.complete(plan, sample_all(plan, 9));
  plan = scheduler.next_plan();
  scheduler.complete(plan, sample_all(plan, 2));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].finish_reason, "stop");
  EXPECT_EQ(results[0].tokens, (std::vector<int32_t>{9, 2}));
}

TEST(Scheduler, LongPromptsArePrefilledInChunksAndDecodeGoesFirst) {
  Scheduler scheduler(64, 4, {4, /*max_step_tokens=*/8, 256});
  scheduler.submit(request(2, 4));
  auto plan = scheduler.next_plan();
  scheduler.complete(plan, sample_all(plan, 1));  // the first is decoding now
  scheduler.submit(request(20, 2));
  plan = scheduler.next_plan();
  ASSERT_EQ(plan.sequences.size(), 2u);
  EXPECT_EQ(plan.sequences[0].new_tokens.size(), 1u);  // decode first
  EXPECT_EQ(plan.sequences[1].new_tokens.size(), 7u);  // then a chunk of what is left of the budget
  EXPECT_FALSE(plan.sequences[1].sample);
  scheduler.complete(plan, sample_all(plan, 1));
  plan = scheduler.next_plan();
  EXPECT_EQ(plan.sequences[1].start_position, 7);
  EXPECT_EQ(plan.sequences[1].new_tokens.size(), 7u);
  scheduler.complete(plan, sample_all(plan, 1));
  plan = scheduler.next_plan();
  EXPECT_EQ(plan.sequences[1].start_position, 14);
  EXPECT_EQ(plan.sequences[1].new_tokens.size(), 6u);
  EXPECT_TRUE(plan.sequences[1].sample);  // the prompt's last chunk samples
}

TEST(Scheduler, AdmissionWaitsForSlotsAndReleasesBlocks) {
  Scheduler scheduler(32, 4, {/*max_sequences=*/2, 64, 64});
  std::vector<GenerationResult> results;
  for (int i = 0; i < 3; ++i) scheduler.submit(request(4, 2, &results, 100 + 10 * i));
  auto plan = scheduler.next_plan();
  EXPECT_EQ(plan.sequences.size(), 2u);
  EXPECT_EQ(scheduler.waiting(), 1u);
  scheduler.complete(plan, play_model(plan));
  run(scheduler, 4);
  EXPECT_EQ(results.size(), 3u);
  EXPECT_EQ(scheduler.blocks().used_blocks(), 0);
}

TEST(Scheduler, PreemptsTheLatestAdmittedAndResumesWithTheSameTokens) {
  // Reference: each request alone with plenty of blocks.
  const int B = 4;
  std::vector<std::vector<int32_t>> alone;
  for (int i = 0; i < 4; ++i) {
    Scheduler s(64, B, {8, 64, 64});
    std::vector<GenerationResult> r;
    s.submit(request(6, 20, &r, 200 + 17 * i));
    run(s, B);
    ASSERT_EQ(r.size(), 1u);
    alone.push_back(r[0].tokens);
  }
  // Together in a cache too small for all four to finish at once: 4 x ceil(26 / 4) = 28 blocks wanted, 12 there.
  Scheduler scheduler(12, B, {8, 64, 64, /*prefix_caching=*/false});
  std::map<uint64_t, GenerationResult> results;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; ++i) {
    auto r = request(6, 20, nullptr, 200 + 17 * i);
    const size_t index = ids.size();
    r.on_finish = [&results, &ids, index](const GenerationResult& g) { results[ids[index]] = g; };
    ids.push_back(0);
    ids[index] = scheduler.submit(std::move(r));
  }
  run(scheduler, B);
  EXPECT_GT(scheduler.stats().preemptions, 0u);
  int preempted = 0;
  for (int i = 0; i < 4; ++i) {
    const GenerationResult& g = results.at(ids[static_cast<size_t>(i)]);
    EXPECT_EQ(g.finish_reason, "length");
    EXPECT_EQ(g.tokens, alone[static_cast<size_t>(i)]) << "request " << i;
    preempted += g.preemptions > 0 ? 1 : 0;
  }
  EXPECT_GT(preempted, 0);
  EXPECT_EQ(scheduler.blocks().used_blocks(), 0);
}

TEST(Scheduler, PrefixCacheSkipsTheCachedBlocks) {
  const int B = 4;
  Scheduler scheduler(64, B, {8, 64, 256});
  std::vector<GenerationResult> results;
  scheduler.submit(request(13, 2, &results));  // blocks [0,4) [4,8) [8,12) full; 13th token in a 4th block
  run(scheduler, B);
  scheduler.submit(request(13, 2, &results));
  const auto plan = scheduler.next_plan();
  ASSERT_EQ(plan.sequences.size(), 1u);
  EXPECT_EQ(plan.sequences[0].start_position, 12);  // three cached blocks: only the last token is computed
  EXPECT_EQ(plan.sequences[0].new_tokens.size(), 1u);
  scheduler.complete(plan, play_model(plan));
  run(scheduler, B);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].cached_prompt_tokens, 12);
  EXPECT_EQ(results[0].tokens, results[1].tokens);
  EXPECT_EQ(scheduler.stats().prefix_query_tokens, 26u);
  EXPECT_EQ(scheduler.stats().prefix_hit_tokens, 12u);
  // A prompt that is exactly whole blocks keeps its last token to compute.
  scheduler.submit(request(12, 1, &results));
  const auto again = scheduler.next_plan();
  EXPECT_EQ(again.sequences[0].start_position, 8);
}

TEST(Scheduler, PrefixCacheIsOffWhenDisabledAndForPromptLogprobs) {
  Scheduler off(64, 4, {8, 64, 256, false});
  off.submit(request(13, 1));
  run(off, 4);
  off.submit(request(13, 1));
  EXPECT_EQ(off.next_plan().sequences[0].start_position, 0);

  Scheduler on(64, 4, {8, 64, 256});
  on.submit(request(13, 1));
  run(on, 4);
  auto r = request(13, 1);
  r.sampling.prompt_logprobs = 2;
  on.submit(std::move(r));
  const auto plan = on.next_plan();
  EXPECT_EQ(plan.sequences[0].start_position, 0);
  EXPECT_EQ(plan.sequences[0].prompt_logprob_targets.size(), 12u);  // every prompt token after the first
}

TEST(Scheduler, SiblingsWaitForTheFirstPromptAndShareItsBlocks) {
  const int B = 4;
  Scheduler scheduler(64, B, {8, 64, 256});
  for (int i = 0; i < 3; ++i) {
    auto r = request(10, 3);
    r.sibling_group = 7;
    scheduler.submit(std::move(r));
  }
  auto plan = scheduler.next_plan();
  ASSERT_EQ(plan.sequences.size(), 1u);  // only the first prefills
  scheduler.complete(plan, play_model(plan));
  plan = scheduler.next_plan();
  ASSERT_EQ(plan.sequences.size(), 3u);
  EXPECT_EQ(plan.sequences[1].start_position, 8);  // the others start after the two cached blocks
  EXPECT_EQ(plan.sequences[2].start_position, 8);
  EXPECT_EQ(plan.sequences[1].block_table[0], plan.sequences[0].block_table[0]);
  EXPECT_EQ(plan.sequences[2].block_table[1], plan.sequences[0].block_table[1]);
  scheduler.complete(plan, play_model(plan));
  run(scheduler, B);
}

TEST(Scheduler, PenalizedSequencesGetTheirHistoryOnce) {
  Scheduler scheduler(64, 4, {8, 64, 256});
  scheduler.submit(request(9, 3));
  run(scheduler, 4);
  auto r = request(9, 3);
  r.sampling.repetition_penalty = 1.3f;
  scheduler.submit(std::move(r));
  auto plan = scheduler.next_plan();
  ASSERT_EQ(plan.sequences.size(), 1u);
  EXPECT_TRUE(plan.sequences[0].history_reset);
  EXPECT_EQ(plan.sequences[0].history_prefix, (std::vector<int32_t>{100, 101, 102, 103, 104, 105, 106, 107}));
  scheduler.complete(plan, play_model(plan));
  plan = scheduler.next_plan();
  EXPECT_FALSE(plan.sequences[0].history_reset);
  EXPECT_TRUE(plan.sequences[0].history_prefix.empty());
}

// Scheduler::recycle hands a completed plan's storage to the next one, whose steps then hold the last plan's values
// until fill_step overwrites them: a field it missed would show up here. The mix covers every field: chunked
// prefill (sample false), prompt logprob targets, penalized history prefixes (after a prefix-cache hit and after
// preemption), plain decode, and sequences that finish and leave the plan shorter.
TEST(Scheduler, RecycledPlansEqualFreshOnes) {
  const auto submit_mix = [](Scheduler& s) {
    for (int i = 0; i < 6; ++i) {
      auto r = request(5 + 7 * i, 6 + 5 * (i % 3), nullptr, 100 + (i % 2) * 40);
      if (i % 3 == 1) r.sampling.repetition_penalty = 1.2f;
      if (i % 3 == 2) r.sampling.prompt_logprobs = 2;
      r.sampling.seed = static_cast<uint64_t>(i);
      s.submit(std::move(r));
    }
  };
  // A cache small enough to preempt, a step budget small enough to chunk.
  const SchedulerLimits limits{4, 12, 64};
  Scheduler fresh(16, 4, limits), recycled(16, 4, limits);
  submit_mix(fresh);
  submit_mix(recycled);
  int steps = 0;
  for (; steps < 2000 && !fresh.idle(); ++steps) {
    const parallel::StepPlan a = fresh.next_plan();
    parallel::StepPlan b = recycled.next_plan();
    ASSERT_EQ(a, b) << "step " << steps;
    fresh.complete(a, play_model(a));
    recycled.complete(b, play_model(b));
    recycled.recycle(std::move(b));
  }
  EXPECT_TRUE(fresh.idle());
  EXPECT_TRUE(recycled.idle());
  EXPECT_GT(fresh.stats().preemptions, 0u);
  EXPECT_GT(steps, 20);
}

TEST(Scheduler, CancelWaitingAndRunning) {
  Scheduler scheduler(32, 4, {1, 64, 64});
  std::vector<GenerationResult> results;
  const uint64_t running = scheduler.submit(request(4, 10, &results));
  const uint64_t waiting = scheduler.submit(request(4, 10, &results));
  auto plan = scheduler.next_plan();
  scheduler.complete(plan, sample_all(plan, 3));
  scheduler.cancel(waiting);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].finish_reason, "cancelled");
  scheduler.cancel(running);
  plan = scheduler.next_plan();  // ends it before it runs again
  EXPECT_TRUE(plan.sequences.empty());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].finish_reason, "cancelled");
  EXPECT_EQ(results[1].tokens, std::vector<int32_t>{3});
  EXPECT_EQ(scheduler.blocks().used_blocks(), 0);
}

TEST(Scheduler, FailAllEndsEveryRequestWithTheError) {
  Scheduler scheduler(32, 4, {1, 64, 64});
  std::vector<GenerationResult> results;
  scheduler.submit(request(4, 10, &results));
  scheduler.submit(request(4, 10, &results));
  auto plan = scheduler.next_plan();
  scheduler.complete(plan, sample_all(plan, 3));
  scheduler.fail_all("rank 3 died");
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.finish_reason, "error");
    EXPECT_EQ(r.error, "rank 3 died");
  }
  EXPECT_EQ(scheduler.blocks().used_blocks(), 0);
}

TEST(Scheduler, RejectsRequestsThatCanNeverRun) {
  Scheduler scheduler(4, 4, {2, 64, 32, true, /*vocab_size=*/1000});
  EXPECT_THROW(scheduler.submit(request(0, 4)), Error);
  EXPECT_THROW(scheduler.submit(request(30, 4)), Error);      // beyond max_sequence_length
  EXPECT_THROW(scheduler.submit(request(10, 10)), Error);     // 20 tokens need 5 blocks, the cache has 4
  EXPECT_THROW(scheduler.submit(request(4, 0)), Error);
  EXPECT_THROW(scheduler.submit(request(4, 2, nullptr, 999)), Error);  // ids 999..1002: outside the vocabulary
  auto bad = request(4, 2);
  bad.sampling.top_p = 1.5f;
  EXPECT_THROW(scheduler.submit(std::move(bad)), Error);
  EXPECT_NO_THROW(scheduler.submit(request(8, 8)));
}

TEST(SchedulerMicroBatches, SplitRunningSequencesIntoDisjointPlans) {
  SchedulerLimits limits{8, 256, 64};
  limits.micro_batches = 2;
  Scheduler scheduler(64, 4, limits);
  for (int i = 0; i < 8; ++i) scheduler.submit(request(5, 6, nullptr, 300 + i));
  const auto a = scheduler.next_plan();
  const auto b = scheduler.next_plan();
  EXPECT_EQ(a.sequences.size(), 4u);
  EXPECT_EQ(b.sequences.size(), 4u);
  EXPECT_EQ(scheduler.in_flight(), 8u);
  EXPECT_TRUE(scheduler.next_plan().sequences.empty()) << "every sequence is in flight";
  scheduler.complete(a, play_model(a));
  const auto a2 = scheduler.next_plan();
  ASSERT_EQ(a2.sequences.size(), a.sequences.size());
  for (size_t i = 0; i < a.sequences.size(); ++i) EXPECT_EQ(a2.sequences[i].sequence_id, a.sequences[i].sequence_id);
  scheduler.complete(b, play_model(b));
  scheduler.complete(a2, play_model(a2));
  EXPECT_EQ(scheduler.in_flight(), 0u);
}

TEST(SchedulerMicroBatches, CompletingAPlanTwiceOrOutOfThinAirIsAnError) {
  SchedulerLimits limits{4, 64, 64};
  limits.micro_batches = 2;
  Scheduler scheduler(16, 4, limits);
  scheduler.submit(request(3, 4, nullptr, 1));
  const auto plan = scheduler.next_plan();
  scheduler.complete(plan, play_model(plan));
  EXPECT_THROW(scheduler.complete(plan, play_model(plan)), Error);
}

// The tokens of every request are those it gets without micro-batches, whatever the depth, with preemption
// (a pool too small for all of them) and with prefix-cache hits (shared prompts).
TEST(SchedulerMicroBatches, ResultsDoNotDependOnThePipelineDepth) {
  for (const bool small_pool : {false, true}) {
    std::map<size_t, std::map<int, std::vector<int32_t>>> by_depth;
    uint64_t preemptions = 0;
    for (const size_t depth : {1u, 2u, 3u}) {
      SchedulerLimits limits{8, 64, 64};
      limits.micro_batches = static_cast<int>(depth);
      Scheduler scheduler(small_pool ? 8 : 128, 4, limits);
      std::map<int, std::vector<int32_t>>& tokens = by_depth[depth];
      for (int i = 0; i < 12; ++i) {
        GenerationRequest r = request(i % 3 == 0 ? 9 : 5, 4 + i % 5, nullptr, 500 + (i % 4));  // shared prompts
        r.on_finish = [&tokens, i](const GenerationResult& g) { tokens[i] = g.tokens; };
        scheduler.submit(std::move(r));
      }
      run_pipelined(scheduler, depth);
      ASSERT_EQ(tokens.size(), 12u);
      if (depth > 1) preemptions += scheduler.stats().preemptions;
      if (!small_pool) {
        EXPECT_GT(scheduler.stats().prefix_hit_tokens, 0u);
      }
    }
    EXPECT_EQ(by_depth[2], by_depth[1]);
    EXPECT_EQ(by_depth[3], by_depth[1]);
    if (small_pool) {
      EXPECT_GT(preemptions, 0u) << "the small pool should force preemption";
    }
  }
}

TEST(SchedulerMicroBatches, ACancelledSequenceEndsOnceItsPlanCompletes) {
  SchedulerLimits limits{4, 64, 64};
  limits.micro_batches = 2;
  Scheduler scheduler(32, 4, limits);
  std::vector<GenerationResult> results;
  const uint64_t id = scheduler.submit(request(3, 50, &results, 7));
  scheduler.submit(request(3, 50, &results, 8));
  const auto a = scheduler.next_plan();
  ASSERT_EQ(a.sequences.size(), 1u);
  ASSERT_EQ(a.sequences[0].sequence_id, id);
  scheduler.cancel(id);
  const auto b = scheduler.next_plan();  // the other sequence; the cancelled one is still in flight
  EXPECT_TRUE(results.empty());
  const int used = scheduler.blocks().used_blocks();
  scheduler.complete(a, play_model(a));
  const auto next = scheduler.next_plan();  // ends it
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].finish_reason, "cancelled");
  EXPECT_TRUE(results[0].tokens.empty()) << "no token is emitted for a sequence cancelled in flight";
  EXPECT_LT(scheduler.blocks().used_blocks(), used);
  EXPECT_EQ(next.finished, std::vector<uint64_t>{id});
  scheduler.complete(b, play_model(b));
  scheduler.complete(next, play_model(next));
}

}  // namespace
}  // namespace tessera::runtime
