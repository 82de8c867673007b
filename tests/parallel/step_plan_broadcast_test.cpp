// Under mpirun: the leader's plans reach every rank intact and in order through the StepPlanChannel, step after
// step, while the leader publishes ahead without waiting; plans larger than one frame arrive whole; shutdown
// travels in-band. The delta codec (parallel/step_plan_delta.h) over a plain byte broadcast rebuilds every plan on
// every rank.
#include <gtest/gtest.h>


#include "parallel/mpi/mpi_communicator.h"
#include "parallel/step_plan_channel.h"
#include "parallel/step_plan_delta.h"

namespace tessera::parallel {
namespace {

StepPlan plan_for(uint64_t step, size_t tokens_per_sequence) {
  StepPlan plan;
  plan.step_index = step;
  for (uint64_t s = 0; s <= step % 7; ++s) {
    SequenceStep seq;
    seq.sequence_id = 100 + s;
    seq.start_position = static_cast<int32_t>(step * 3);
    seq.new_tokens.assign(tokens_per_sequence + s, static_cast<int32_t>(step));
    seq.block_table = {static_cast<int32_t>(s), static_cast<int32_t>(step)};
    plan.sequences.push_back(seq);
  }
  return plan;
}

TEST(StepPlanBroadcast, EveryRankSeesTheLeadersPlansInOrder) {
  auto world = MpiCommunicator::world();
  StepPlanChannel channel(*world);
  constexpr uint64_t kSteps = 40;
  for (uint64_t step = 0; step < kSteps; ++step) {
    // Every fifth plan is larger than one frame (a long prompt chunk): it takes the second broadcast.
    const size_t tokens = step % 5 == 4 ? StepPlanChannel::kFrameBytes / 2 : 1;
    StepPlan expected = plan_for(step, tokens);
    expected.shutdown = step + 1 == kSteps;
    if (world->rank() == 0) {
      channel.publish(expected);  // never waits for the others: they check every plan below
    } else {
      const StepPlan got = channel.receive();
      ASSERT_EQ(got, expected) << "step " << step;
    }
  }
  if (world->rank() == 0) {
    EXPECT_LE(channel.plans_in_flight(), kSteps);
    channel.flush();
    EXPECT_EQ(channel.plans_in_flight(), 0u);
  }
  world->barrier();
}

TEST(StepPlanBroadcast, TheRootDoesNotWaitForBusyMembers) {
  // The other members receive no plan until the root has published all of them and told them so: if publishing
  // waited for a receiver, this deadlocks (and CTest's timeout fails the test).
  auto world = MpiCommunicator::world();
  StepPlanChannel channel(*world);
  if (world->rank() == 0) {
    for (uint64_t step = 0; step < 8; ++step) channel.publish(plan_for(step, 1));
    int published = 8;
    for (int member = 1; member < world->size(); ++member) world->send(host_span(&published, 1), member, MessageTag::kTest);
    channel.flush();
  } else {
    int published = 0;
    world->recv(host_span(&published, 1), 0, MessageTag::kTest);
    ASSERT_EQ(published, 8);
    for (uint64_t step = 0; step < 8; ++step) ASSERT_EQ(channel.receive(), plan_for(step, 1));
  }
  world->barrier();
}

// The leader's plans: sequences join, grow a block every few steps, and finish; two micro-batches; a heartbeat;
// shutdown.
StepPlan leader_plan(uint64_t step) {
  StepPlan plan;
  plan.step_index = step;
  plan.micro_batch = static_cast<uint8_t>(step % 2);
  for (uint64_t s = step / 4; s <= step; ++s) {
    SequenceStep seq;
    seq.sequence_id = 100 + s;
    seq.start_position = static_cast<int32_t>(step - s);
    seq.new_tokens = {static_cast<int32_t>(step * 7 + s)};
    for (uint64_t b = 0; b <= (step - s) / 3; ++b) seq.block_table.push_back(static_cast<int32_t>(s * 16 + b));
    seq.sampling.temperature = 0.1f * static_cast<float>(s % 3);
    plan.sequences.push_back(seq);
  }
  if (step % 4 == 0 && step > 0) plan.finished = {100 + step / 4 - 1};
  plan.heartbeat = step == 9;
  if (plan.heartbeat) plan.sequences.clear();
  plan.shutdown = step == 15;
  return plan;
}

TEST(StepPlanDeltaBroadcast, EveryRankRebuildsTheLeadersPlans) {
  auto world = MpiCommunicator::world();
  StepPlanEncoder encoder;
  StepPlanDecoder decoder;
  for (uint64_t step = 0; step < 16; ++step) {
    std::vector<std::byte> bytes;
    uint64_t size = 0;
    if (world->rank() == 0) {
      bytes = encoder.encode(leader_plan(step));
      size = bytes.size();
    }
    world->broadcast(host_span(&size, 1), 0);
    bytes.resize(size);
    world->broadcast(host_span(bytes), 0);
    if (world->rank() != 0) {
      const StepPlan plan = decoder.decode(bytes);
      ASSERT_EQ(plan, leader_plan(step)) << "step " << step;
    }
  }
}

}  // namespace
}  // namespace tessera::parallel
