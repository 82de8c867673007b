// Under mpirun: the leader's plan reaches every rank intact, step after step, and shutdown travels in-band.
#include <gtest/gtest.h>

#include "parallel/mpi/mpi_communicator.h"
#include "parallel/step_plan.h"

namespace tessera::parallel {
namespace {

TEST(StepPlanBroadcast, EveryRankSeesTheLeadersPlans) {
  auto world = MpiCommunicator::world();
  for (uint64_t step = 0; step < 5; ++step) {
    StepPlan plan;
    if (world->rank() == 0) {
      plan.step_index = step;
      for (uint64_t s = 0; s <= step; ++s) {
        SequenceStep seq;
        seq.sequence_id = 100 + s;
        seq.start_position = static_cast<int32_t>(step * 3);
        seq.new_tokens.assign(static_cast<size_t>(s + 1), static_cast<int32_t>(step));
        seq.block_table = {static_cast<int32_t>(s)};
        plan.sequences.push_back(seq);
      }
      plan.shutdown = step == 4;
    }
    broadcast_step_plan(*world, plan);
    ASSERT_EQ(plan.step_index, step);
    ASSERT_EQ(plan.sequences.size(), step + 1);
    for (uint64_t s = 0; s <= step; ++s) {
      EXPECT_EQ(plan.sequences[s].sequence_id, 100 + s);
      EXPECT_EQ(plan.sequences[s].new_tokens.size(), s + 1);
    }
    EXPECT_EQ(plan.shutdown, step == 4);
  }
}

}  // namespace
}  // namespace tessera::parallel
