// The leader's scheduler on its own: admission by KV blocks and batch slots, decode before prefill, chunked
// prefill under the step budget, finish reasons, cancellation, block release.
#include <gtest/gtest.h>

#include "kernels/base/error.h"
#include "runtime/engine/scheduler.h"

namespace tessera::runtime {
namespace {

GenerationRequest request(int prompt_tokens, int max_new, std::vector<GenerationResult>* results = nullptr) {
  GenerationRequest r;
  for (int i = 0; i < prompt_tokens; ++i) r.prompt.push_back(100 + i);
  r.max_new_tokens = max_new;
  if (results) r.on_finish = [results](const GenerationResult& g) { results->push_back(g); };
  return r;
}

// Plays the model: every sampling sequence gets token `token`.
std::vector<SampledToken> sample_all(const parallel::StepPlan& plan, int32_t token) {
  std::vector<SampledToken> out;
  for (const auto& s : plan.sequences) {
    if (s.sample) out.push_back({s.sequence_id, token});
  }
  return out;
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
  EXPECT_EQ(plan.sequences[0].block_table.size(), 2u);  // ceil((5 + 3) / 4)
  EXPECT_TRUE(plan.sequences[0].sample);
  scheduler.complete(plan, sample_all(plan, 7));
  for (int step = 1; step < 3; ++step) {
    plan = scheduler.next_plan();
    ASSERT_EQ(plan.sequences.size(), 1u);
    EXPECT_EQ(plan.sequences[0].new_tokens, std::vector<int32_t>{7});
    EXPECT_EQ(plan.sequences[0].start_position, 5 + step - 1);
    scheduler.complete(plan, sample_all(plan, 7));
  }
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].finish_reason, "length");
  EXPECT_EQ(results[0].tokens, (std::vector<int32_t>{7, 7, 7}));
  plan = scheduler.next_plan();  // announces the finished sequence to the ranks
  EXPECT_TRUE(plan.sequences.empty());
  EXPECT_EQ(plan.finished, std::vector<uint64_t>{id});
  EXPECT_TRUE(scheduler.idle());
}

TEST(Scheduler, StopTokenEndsTheSequence) {
  Scheduler scheduler(8, 4, {4, 64, 64});
  std::vector<GenerationResult> results;
  auto r = request(3, 10, &results);
  r.stop_ids = {2};
  scheduler.submit(std::move(r));
  auto plan = scheduler.next_plan();
  scheduler.complete(plan, sample_all(plan, 5));
  plan = scheduler.next_plan();
  scheduler.complete(plan, sample_all(plan, 2));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].finish_reason, "stop");
  EXPECT_EQ(results[0].tokens, (std::vector<int32_t>{5, 2}));
}

TEST(Scheduler, LongPromptsArePrefilledInChunksAndDecodeGoesFirst) {
  Scheduler scheduler(64, 4, {4, /*max_step_tokens=*/6, 128});
  std::vector<GenerationResult> results;
  scheduler.submit(request(2, 4, &results));   // short: decodes from step 2 on
  scheduler.submit(request(13, 2, &results));  // long: 13 prompt tokens over several steps
  auto plan = scheduler.next_plan();
  ASSERT_EQ(plan.sequences.size(), 2u);
  EXPECT_EQ(plan.sequences[0].new_tokens.size(), 2u);
  EXPECT_EQ(plan.sequences[1].new_tokens.size(), 4u);  // the rest of the budget
  EXPECT_FALSE(plan.sequences[1].sample);              // not the prompt's last chunk
  scheduler.complete(plan, sample_all(plan, 9));
  int prefilled = 4;
  while (prefilled < 13) {
    plan = scheduler.next_plan();
    ASSERT_GE(plan.sequences.size(), 1u);
    int tokens = 0;
    for (const auto& s : plan.sequences) tokens += static_cast<int>(s.new_tokens.size());
    EXPECT_LE(tokens, 6);
    const auto& prefill = plan.sequences.back();
    EXPECT_EQ(prefill.start_position, prefilled);
    prefilled += static_cast<int>(prefill.new_tokens.size());
    EXPECT_EQ(prefill.sample, prefilled == 13);
    scheduler.complete(plan, sample_all(plan, 9));
  }
  while (!scheduler.idle()) {
    plan = scheduler.next_plan();
    scheduler.complete(plan, sample_all(plan, 9));
  }
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_EQ(r.finish_reason, "length");
}

TEST(Scheduler, AdmissionWaitsForBlocksAndSlotsAndReleasesThem) {
  Scheduler scheduler(/*kv_blocks=*/4, /*block_size=*/4, {/*max_sequences=*/8, 64, 64});
  std::vector<GenerationResult> results;
  scheduler.submit(request(4, 4, &results));  // 2 blocks
  scheduler.submit(request(4, 4, &results));  // 2 blocks
  scheduler.submit(request(4, 4, &results));  // must wait
  auto plan = scheduler.next_plan();
  EXPECT_EQ(plan.sequences.size(), 2u);
  EXPECT_EQ(scheduler.waiting(), 1u);
  while (scheduler.waiting() > 0) {
    scheduler.complete(plan, sample_all(plan, 1));
    plan = scheduler.next_plan();
  }
  // The third was admitted once the first two released their blocks.
  EXPECT_EQ(results.size(), 2u);
  while (!scheduler.idle()) {
    scheduler.complete(plan, sample_all(plan, 1));
    plan = scheduler.next_plan();
  }
  EXPECT_EQ(results.size(), 3u);
}

TEST(Scheduler, CancelWaitingAndRunning) {
  Scheduler scheduler(2, 4, {1, 64, 64});
  std::vector<GenerationResult> results;
  const uint64_t running = scheduler.submit(request(4, 4, &results));
  const uint64_t waiting = scheduler.submit(request(4, 4, &results));
  auto plan = scheduler.next_plan();
  scheduler.complete(plan, sample_all(plan, 3));
  scheduler.cancel(waiting);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].finish_reason, "cancelled");
  scheduler.cancel(running);
  plan = scheduler.next_plan();
  EXPECT_TRUE(plan.sequences.empty());
  EXPECT_EQ(plan.finished, std::vector<uint64_t>{running});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].finish_reason, "cancelled");
  EXPECT_EQ(results[1].tokens, std::vector<int32_t>{3});
  EXPECT_TRUE(scheduler.idle());
}

TEST(Scheduler, RejectsRequestsThatCanNeverRun) {
  Scheduler scheduler(2, 4, {1, 64, 16});
  EXPECT_THROW(scheduler.submit(request(0, 4)), Error);
  EXPECT_THROW(scheduler.submit(request(4, 0)), Error);
  EXPECT_THROW(scheduler.submit(request(10, 10)), Error);  // longer than max_sequence_length
  Scheduler small(1, 4, {1, 64, 64});
  EXPECT_THROW(small.submit(request(4, 4)), Error);  // needs 2 blocks, the cache has 1
}

}  // namespace
}  // namespace tessera::runtime
