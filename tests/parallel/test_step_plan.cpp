#include <gtest/gtest.h>

#include "kernels/base/error.h"
#include "parallel/step_plan.h"

namespace tessera::parallel {
namespace {

StepPlan sample_plan() {
  StepPlan plan;
  plan.step_index = 42;
  plan.finished = {7, 9};
  SequenceStep prefill;
  prefill.sequence_id = 11;
  prefill.start_position = 0;
  prefill.new_tokens = {1, 2, 3, 4, 5};
  prefill.block_table = {0, 3};
  prefill.sampling = {0.7f, 40, 0.9f, 0.05f, 1234};
  prefill.sampling.repetition_penalty = 1.1f;
  prefill.sampling.frequency_penalty = -0.5f;
  prefill.sampling.presence_penalty = 0.25f;
  prefill.sampling.prompt_length = 5;
  prefill.sampling.logprobs = 3;
  prefill.sampling.prompt_logprobs = 2;
  prefill.history_reset = true;
  prefill.history_prefix = {8, 8, 9};
  prefill.prompt_logprob_targets = {2, 3, 4, 5};
  SequenceStep decode;
  decode.sequence_id = 12;
  decode.start_position = 17;
  decode.new_tokens = {99};
  decode.block_table = {1, 2, 4};
  decode.sample = false;
  plan.sequences = {prefill, decode};
  return plan;
}

TEST(StepPlan, RoundTrip) {
  const StepPlan plan = sample_plan();
  EXPECT_EQ(decode_step_plan(encode_step_plan(plan)), plan);
  StepPlan shutdown;
  shutdown.shutdown = true;
  EXPECT_EQ(decode_step_plan(encode_step_plan(shutdown)), shutdown);
}

TEST(StepPlan, EveryTruncationIsAnError) {
  const auto bytes = encode_step_plan(sample_plan());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW(decode_step_plan(std::span(bytes.data(), n)), Error) << "prefix of " << n << " bytes";
  }
}

TEST(StepPlan, WrongMagicVersionAndTrailingBytes) {
  auto bytes = encode_step_plan(sample_plan());
  auto wrong_magic = bytes;
  wrong_magic[0] = std::byte{0};
  EXPECT_THROW(decode_step_plan(wrong_magic), Error);
  auto wrong_version = bytes;
  wrong_version[4] = std::byte{99};
  try {
    decode_step_plan(wrong_version);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 99"), std::string::npos) << e.what();
  }
  bytes.push_back(std::byte{0});
  EXPECT_THROW(decode_step_plan(bytes), Error);
}

TEST(StepPlan, HugeCountsAreRejectedBeforeAllocating) {
  auto bytes = encode_step_plan(StepPlan{});
  // The sequence count is the last field of an empty plan.
  bytes[bytes.size() - 1] = std::byte{0x7f};
  EXPECT_THROW(decode_step_plan(bytes), Error);
}

}  // namespace
}  // namespace tessera::parallel
