// main() of every single-process GoogleTest binary (tessera_add_gtest links it instead of GTest::gtest_main): the
// same run, but the exit code tells CTest Failed, Skipped or Passed (tests/support/ctest_outcome.h), so a test
// that skipped is reported Skipped, never Passed.
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/support/ctest_outcome.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  const tessera::testing::Outcome outcome = tessera::testing::run_outcome(result);
  if (outcome != tessera::testing::Outcome::kPassed) {
    std::printf("tessera: %s\n", tessera::testing::describe(outcome));
  }
  return tessera::testing::exit_code(outcome);
}
