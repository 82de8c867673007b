// The delta control plane (parallel/step_plan_delta.h) on hand-made plans: every kind of change round-trips bit for
// bit, followers stay in step, a drifted follower throws naming the step, malformed bytes throw and leave the
// decoder as it was. tests/parallel/test_step_plan_delta_scheduler.cpp drives it with the real scheduler.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "kernels/base/error.h"
#include "parallel/step_plan_delta.h"
#include "parallel/wire_format.h"

namespace tessera::parallel {
namespace {

SequenceStep sequence(uint64_t id, int32_t start, std::vector<int32_t> tokens, std::vector<int32_t> table) {
  SequenceStep s;
  s.sequence_id = id;
  s.start_position = start;
  s.new_tokens = std::move(tokens);
  s.block_table = std::move(table);
  return s;
}

// Bit for bit, which operator== is not for floats (-0.0 == 0.0, NaN != NaN).
void expect_same_bits(const StepPlan& a, const StepPlan& b) { EXPECT_EQ(encode_step_plan(a), encode_step_plan(b)); }

// A few steps that exercise every kind of change: new sequences, the same table, appended blocks, a replaced
// (shorter) table, changed sampling, history prefixes, prompt-logprob targets, finished ids, heartbeat, shutdown.
std::vector<StepPlan> scripted_plans() {
  std::vector<StepPlan> plans;
  StepPlan p;
  p.step_index = 0;
  SequenceStep a = sequence(1, 0, {10, 11, 12, 13, 14}, {4, 5});
  a.sampling = {0.7f, 40, 0.9f, 0.05f, 1234};
  a.sampling.repetition_penalty = 1.1f;
  a.sampling.prompt_length = 5;
  a.sampling.logprobs = 3;
  a.history_reset = true;
  a.history_prefix = {};
  SequenceStep b = sequence(2, 32, {7, 8}, {9, 1, 300000});
  b.sample = false;
  b.history_reset = true;
  b.sampling.repetition_penalty = 1.3f;
  b.history_prefix.assign(32, 5);
  SequenceStep c = sequence(3, 0, {1, 2, 3, 4}, {6});
  c.sampling.prompt_logprobs = 2;
  c.prompt_logprob_targets = {2, 3, 4};
  p.sequences = {a, b, c};
  plans.push_back(p);

  p = {};  // decode steps: same tables, then appended blocks
  p.step_index = 1;
  a = sequence(1, 5, {99}, {4, 5});
  a.sampling = plans[0].sequences[0].sampling;
  b = sequence(2, 34, {-1}, {9, 1, 300000, 300001, -7});
  b.sampling = plans[0].sequences[1].sampling;
  p.sequences = {a, b};
  p.finished = {3, 77};  // 77 was never carried (cancelled while waiting)
  p.micro_batch = 1;
  plans.push_back(p);

  p = {};
  p.step_index = 2;
  p.heartbeat = true;
  plans.push_back(p);

  p = {};  // sequence 1 was preempted and comes back with a shorter, different table; 2 changes its sampling bits
  p.step_index = 3;
  a = sequence(1, 0, {10, 11, 12, 13, 14, 99}, {8});
  a.sampling = plans[0].sequences[0].sampling;
  a.history_reset = true;
  b = sequence(2, 35, {3}, {9, 1, 300000, 300001, -7});
  b.sampling = plans[0].sequences[1].sampling;
  b.sampling.frequency_penalty = -0.0f;
  b.sampling.min_p = std::numeric_limits<float>::quiet_NaN();
  p.sequences = {b, a};
  plans.push_back(p);

  p = {};  // the same NaN again (no change), an empty table, extreme values
  p.step_index = 4;
  p.micro_batch = 255;
  b.start_position = std::numeric_limits<int32_t>::max();
  b.new_tokens = {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
  b.block_table = {};
  SequenceStep d = sequence(std::numeric_limits<uint64_t>::max(), 0, {}, {std::numeric_limits<int32_t>::min(),
                                                                          std::numeric_limits<int32_t>::max()});
  p.sequences = {b, d};
  plans.push_back(p);

  p = {};  // a finished id that the same plan still runs: applied, then dropped, on both sides
  p.step_index = 5;
  a = sequence(1, 6, {5}, {8});
  a.sampling = plans[0].sequences[0].sampling;
  p.sequences = {a};
  p.finished = {1, 2};
  plans.push_back(p);

  p = {};  // sequence 1 again: new to both sides
  p.step_index = 6;
  a = sequence(1, 0, {4}, {0});
  p.sequences = {a};
  plans.push_back(p);

  p = {};
  p.step_index = 7;
  p.shutdown = true;
  p.finished = {1, std::numeric_limits<uint64_t>::max()};
  plans.push_back(p);
  return plans;
}

TEST(StepPlanDelta, EveryKindOfChangeRoundTripsBitForBit) {
  StepPlanEncoder encoder;
  StepPlanDecoder first, second;
  for (const StepPlan& plan : scripted_plans()) {
    const auto bytes = encoder.encode(plan);
    const StepPlan decoded = first.decode(bytes);
    expect_same_bits(decoded, plan);
    if (!std::isnan(plan.sequences.empty() ? 0.0f : plan.sequences[0].sampling.min_p)) {
      EXPECT_EQ(decoded, plan);
    }
    expect_same_bits(second.decode(bytes), plan);
    EXPECT_EQ(first.mirror().digest(), encoder.mirror().digest()) << "step " << plan.step_index;
    EXPECT_EQ(first.mirror().size(), encoder.mirror().size()) << "step " << plan.step_index;
  }
  EXPECT_EQ(encoder.mirror().size(), 0u);  // 3 left at step 1, 1 and 2 at step 5, 1 again and the max id at step 7
  EXPECT_EQ(first.mirror().plans(), scripted_plans().size());
}

TEST(StepPlanDelta, KnownSequencesTravelInAFewBytes) {
  StepPlanEncoder encoder;
  StepPlan prefill;
  SequenceStep s = sequence(5, 0, std::vector<int32_t>(64, 1000), {});
  for (int32_t b = 0; b < 200; ++b) s.block_table.push_back(1000 + b);
  s.sampling.temperature = 0.8f;
  prefill.sequences = {s};
  const auto first = encoder.encode(prefill);
  EXPECT_LT(first.size(), encode_step_plan(prefill).size());
  StepPlan decode = prefill;
  decode.step_index = 1;
  decode.sequences[0].start_position = 64;
  decode.sequences[0].new_tokens = {1000};
  const auto second = encoder.encode(decode);
  // Header (8 + 1 + 1 + 1 + 4 + 1 + 1 + 1), the sequence (id, flags, start, 1 token of 2 bytes), finished (1).
  EXPECT_LE(second.size(), 26u);
  EXPECT_GT(encode_step_plan(decode).size(), 800u);
}

TEST(StepPlanDelta, APlanNamingASequenceTwiceIsRefusedOnBothSides) {
  StepPlanEncoder encoder;
  StepPlan plan;
  plan.step_index = 3;
  plan.sequences = {sequence(1, 0, {1}, {0}), sequence(1, 1, {2}, {0})};
  try {
    encoder.encode(plan);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step 3: sequence 1 occurs twice"), std::string::npos) << e.what();
  }
  EXPECT_EQ(encoder.mirror().plans(), 0u);  // nothing remembered
  // A decoder refuses the same from a message (two new sequences with one id, spliced by hand).
  StepPlan single;
  single.sequences = {sequence(1, 0, {1}, {0})};
  StepPlanEncoder other;
  auto bytes = other.encode(single);
  // Header: magic, version, step, plans, live, digest, flags, micro-batch, count (1 byte each but the 8 + 4).
  const size_t header = 8 + 3 + 4 + 1 + 1 + 1;
  std::vector<std::byte> twice(bytes.begin(), bytes.begin() + header);
  twice[header - 1] = std::byte{2};
  const std::vector<std::byte> one(bytes.begin() + header, bytes.end() - 1);  // less the finished count
  twice.insert(twice.end(), one.begin(), one.end());
  twice.insert(twice.end(), one.begin(), one.end());
  twice.push_back(std::byte{0});
  StepPlanDecoder decoder;
  try {
    decoder.decode(twice);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("occurs twice"), std::string::npos) << e.what();
  }
  EXPECT_EQ(decoder.decode(bytes), single);  // and it is still usable
}

// The drift checks: each names the step.
void expect_drift(StepPlanDecoder& decoder, const std::vector<std::byte>& bytes, uint64_t step, const char* what) {
  try {
    decoder.decode(bytes);
    FAIL() << "decoded a message encoded against another mirror";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("step " + std::to_string(step) + ":"), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
  }
}

TEST(StepPlanDelta, AFollowerThatMissedOrRepeatedAPlanThrowsNamingTheStep) {
  const auto plans = scripted_plans();
  StepPlanEncoder encoder;
  std::vector<std::vector<std::byte>> messages;
  for (const StepPlan& p : plans) messages.push_back(encoder.encode(p));

  StepPlanDecoder skipped;
  skipped.decode(messages[0]);
  expect_drift(skipped, messages[2], 2, "after 2 plans but this rank has decoded 1");

  StepPlanDecoder repeated;
  repeated.decode(messages[0]);
  expect_drift(repeated, messages[0], 0, "a plan was lost, repeated or decoded out of order");

  StepPlanDecoder late;  // a rank that starts listening in the middle
  expect_drift(late, messages[3], 3, "drifted");
  // None of these changed the decoders: in order, they go on.
  skipped.decode(messages[1]);
  EXPECT_EQ(skipped.decode(messages[2]), plans[2]);
}

TEST(StepPlanDelta, AFollowerWhoseMirrorDiffersThrowsEvenWhenTheCountsAgree) {
  StepPlan a, b;
  a.sequences = {sequence(1, 0, {1, 2}, {0})};
  b.sequences = {sequence(1, 0, {1, 2}, {3})};  // same id, another block: same counts, another hash
  StepPlan next;
  next.step_index = 1;
  next.sequences = {sequence(1, 2, {5}, {0})};
  StepPlanEncoder leader;
  leader.encode(a);
  const auto bytes = leader.encode(next);
  StepPlanDecoder decoder;
  decoder.decode(StepPlanEncoder{}.encode(b));  // another leader's first plan
  expect_drift(decoder, bytes, 1, "has drifted from the leader's (1 sequences, hash 0x");
}

TEST(StepPlanDelta, UnknownAndAlreadyKnownSequencesAreDrift) {
  // A leader and a follower that disagree on which sequences are live, hashes aside: made by encoding against an
  // encoder that saw a plan the follower did not and patching the mirror fields (plans, live, digest) to match.
  StepPlan intro;
  intro.sequences = {sequence(4, 0, {1}, {0})};
  StepPlan update;
  update.step_index = 9;
  update.sequences = {sequence(4, 1, {2}, {0})};
  StepPlanEncoder leader;
  leader.encode(intro);
  auto bytes = leader.encode(update);
  StepPlanDecoder fresh;  // knows nothing: patch the message to claim an empty mirror after 0 plans
  StepPlanEncoder empty;
  const auto reference = empty.encode(StepPlan{});
  // Both headers are: magic, version (8), step (1), plans (1), live (1), digest (4).
  std::copy(reference.begin() + 9, reference.begin() + 15, bytes.begin() + 9);
  expect_drift(fresh, bytes, 9, "updates sequence 4 but this rank does not know it");
}

TEST(StepPlanDelta, AFullPlanIsNamedAsSuch) {
  StepPlanDecoder decoder;
  try {
    decoder.decode(encode_step_plan(scripted_plans()[0]));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a full step plan (magic PSPT)"), std::string::npos) << e.what();
  }
}

TEST(StepPlanDelta, WrongMagicVersionAndTrailingBytes) {
  StepPlanEncoder encoder;
  auto bytes = encoder.encode(scripted_plans()[0]);
  StepPlanDecoder decoder;
  auto wrong_magic = bytes;
  wrong_magic[0] = std::byte{0};
  EXPECT_THROW(decoder.decode(wrong_magic), Error);
  auto wrong_version = bytes;
  wrong_version[4] = std::byte{99};
  try {
    decoder.decode(wrong_version);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 99"), std::string::npos) << e.what();
  }
  auto trailing = bytes;
  trailing.push_back(std::byte{0});
  try {
    decoder.decode(trailing);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step 0: 1 trailing bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(decoder.decode(bytes), scripted_plans()[0]);
}

TEST(StepPlanDelta, EveryTruncationIsAnErrorAndChangesNothing) {
  const auto plans = scripted_plans();
  StepPlanEncoder encoder;
  StepPlanDecoder decoder;
  for (const StepPlan& plan : plans) {
    const auto bytes = encoder.encode(plan);
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_THROW(decoder.decode(std::span(bytes.data(), n)), Error) << "step " << plan.step_index << ", prefix of "
                                                                      << n << " of " << bytes.size() << " bytes";
    }
    expect_same_bits(decoder.decode(bytes), plan);
  }
}

TEST(StepPlanDelta, CorruptBytesThrowOrDecodeButNeverCrash) {
  // Every byte of every message, with a few masks, against a copy of the decoder as it stood before the message.
  // Most corruptions throw (the mirror fields, flags, counts); those that change a token or a position decode.
  const auto plans = scripted_plans();
  StepPlanEncoder encoder;
  StepPlanDecoder decoder;
  size_t thrown = 0, decoded = 0;
  for (const StepPlan& plan : plans) {
    const auto bytes = encoder.encode(plan);
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (const int mask : {0x01, 0x80, 0xff, 0x20}) {
        auto corrupt = bytes;
        corrupt[i] ^= static_cast<std::byte>(mask);
        StepPlanDecoder copy = decoder;
        try {
          copy.decode(corrupt);
          ++decoded;
        } catch (const Error&) {
          ++thrown;
        }
      }
    }
    // Bytes 9..14 name the mirror (plans, live, digest, for these small values): any change there is drift.
    for (size_t i = 9; i < 15; ++i) {
      auto corrupt = bytes;
      corrupt[i] ^= std::byte{0x01};
      StepPlanDecoder copy = decoder;
      EXPECT_THROW(copy.decode(corrupt), Error) << "step " << plan.step_index << ", byte " << i;
    }
    expect_same_bits(decoder.decode(bytes), plan);
  }
  EXPECT_GT(thrown, 0u);
  EXPECT_GT(decoded, 0u);
  std::printf("corrupt messages: %zu thrown, %zu decoded\n", thrown, decoded);
}

TEST(StepPlanDelta, HugeCountsAreRejectedBeforeAllocating) {
  StepPlanEncoder encoder;
  auto bytes = encoder.encode(StepPlan{});
  // An empty plan ends with its sequence count and its finished count, one byte each: claim 2^63 sequences.
  bytes.resize(bytes.size() - 2);
  for (int i = 0; i < 8; ++i) bytes.push_back(std::byte{0xff});
  bytes.push_back(std::byte{0x7f});
  bytes.push_back(std::byte{0});
  StepPlanDecoder decoder;
  try {
    decoder.decode(bytes);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequences in"), std::string::npos) << e.what();
  }
  // A sequence that claims 2^32 - 1 new tokens.
  StepPlan plan;
  plan.sequences = {sequence(1, 0, {}, {})};
  auto one = StepPlanEncoder{}.encode(plan);
  // ... id (1), flags (1), start (1), token count (1), table count (1), sampling (42), finished count (1).
  const size_t tokens_at = one.size() - 1 - 42 - 1 - 1;
  std::vector<std::byte> patched(one.begin(), one.begin() + static_cast<ptrdiff_t>(tokens_at));
  for (const int b : {0xff, 0xff, 0xff, 0xff, 0x0f}) patched.push_back(static_cast<std::byte>(b));
  patched.insert(patched.end(), one.begin() + static_cast<ptrdiff_t>(tokens_at) + 1, one.end());
  try {
    StepPlanDecoder{}.decode(patched);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("claims 4294967295 new tokens"), std::string::npos) << e.what();
  }
}

TEST(StepPlanDelta, NegativeStartPositionsAreRejectedLikeTheFullForm) {
  StepPlan plan;
  plan.sequences = {sequence(1, -3, {1}, {0})};
  const auto bytes = StepPlanEncoder{}.encode(plan);
  try {
    StepPlanDecoder{}.decode(bytes);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequence 1 has negative start position -3"), std::string::npos) << e.what();
  }
}

TEST(WireFormat, VarintsHaveOneEncoding) {
  WireWriter out;
  for (const uint64_t v : {0ull, 1ull, 127ull, 128ull, 16383ull, 16384ull, 0xffffffffull, ~0ull}) out.put_varint(v);
  const auto bytes = out.take();
  WireReader in(bytes, "test");
  for (const uint64_t v : {0ull, 1ull, 127ull, 128ull, 16383ull, 16384ull, 0xffffffffull, ~0ull}) {
    EXPECT_EQ(in.get_varint(), v);
  }
  EXPECT_TRUE(in.at_end());
  const auto read = [](std::vector<uint8_t> raw, int bits) {
    std::vector<std::byte> b;
    for (const uint8_t x : raw) b.push_back(std::byte{x});
    WireReader r(b, "test");
    return r.get_varint(bits);
  };
  EXPECT_EQ(read({0xff, 0xff, 0xff, 0xff, 0x0f}, 32), 0xffffffffull);
  EXPECT_THROW(read({0x80, 0x00}, 64), Error);                    // overlong zero
  EXPECT_THROW(read({0xff, 0xff, 0xff, 0xff, 0x1f}, 32), Error);  // 33 bits
  EXPECT_THROW(read({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 64), Error);  // 65 bits
  EXPECT_EQ(read({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 64), ~0ull);
  EXPECT_THROW(read({0x80, 0x80}, 64), Error);  // truncated
}

}  // namespace
}  // namespace tessera::parallel
