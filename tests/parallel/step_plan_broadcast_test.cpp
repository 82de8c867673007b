// Under mpirun: the leader's plans reach every rank intact and in order through the StepPlanChannel, step after
// step, while the leader publishes ahead without waiting; plans larger than one frame arrive whole; shutdown
// travels in-band.
#include <gtest/gtest.h>


#include "parallel/mpi/mpi_communicator.h"
#include "parallel/step_plan_channel.h"

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

}  // namespace
}  // namespace tessera::parallel
