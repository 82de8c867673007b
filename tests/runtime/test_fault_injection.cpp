// The test-only fault hook (runtime/engine/fault_injection.h): its spec is parsed strictly, it aims at one rank and
// one work step (heartbeat plans do not count), and it throws exactly there.
#include <gtest/gtest.h>

#include "kernels/base/error.h"
#include "runtime/engine/fault_injection.h"

namespace tessera::runtime {
namespace {

parallel::StepPlan work_plan(uint64_t step) {
  parallel::StepPlan plan;
  plan.step_index = step;
  plan.sequences.resize(1);
  return plan;
}

parallel::StepPlan heartbeat_plan(uint64_t step) {
  parallel::StepPlan plan;
  plan.step_index = step;
  plan.heartbeat = true;
  return plan;
}

TEST(FaultInjection, ThrowsAtTheNamedWorkStepOfTheNamedRankOnly) {
  FaultInjector mine = FaultInjector::parse("throw:2:3", 2);
  FaultInjector other = FaultInjector::parse("throw:2:3", 1);
  uint64_t step = 0;
  for (int work = 1; work <= 5; ++work) {
    EXPECT_NO_THROW(mine.before_execute(heartbeat_plan(step++)));  // heartbeats are not work
    EXPECT_NO_THROW(other.before_execute(work_plan(step)));
    if (work == 3) {
      EXPECT_THROW(mine.before_execute(work_plan(step++)), Error);
    } else {
      EXPECT_NO_THROW(mine.before_execute(work_plan(step++)));
    }
  }
}

TEST(FaultInjection, MalformedSpecsAreErrorsNamingTheVariable) {
  for (const char* spec : {"", "throw", "throw:1", "throw:a:3", "throw:1:0", "explode:1:3", "throw:-1:3",
                           "throw:1:3:4", "hang:1:3x"}) {
    try {
      FaultInjector::parse(spec, 0);
      ADD_FAILURE() << "accepted '" << spec << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("TESSERA_TEST_FAULT"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(FaultInjector::parse("hang:0:1", 0));
}

}  // namespace
}  // namespace tessera::runtime
