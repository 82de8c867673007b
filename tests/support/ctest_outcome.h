#pragma once
// What a GoogleTest run reports to CTest: Failed (exit 1), Skipped (exit TESSERA_SKIP_RETURN_CODE, which
// cmake/TesseraTesting.cmake sets as every test's SKIP_RETURN_CODE) or Passed (exit 0).
//
// Skipped only when every case that was selected skipped and none failed: a binary that skips one case and fails
// another is Failed, one that skips some and passes the others is Passed (each case is its own CTest test anyway,
// see tessera_add_gtest). The decision reads GoogleTest's own counts, never its output, so a crash or a failure
// after a "[  SKIPPED ]" line can never be reported as a skip.
#include <gtest/gtest.h>

#ifndef TESSERA_SKIP_RETURN_CODE
#define TESSERA_SKIP_RETURN_CODE 77  // tests/CMakeLists.txt passes the value CMake uses
#endif

namespace tessera::testing {

enum class Outcome { kPassed, kFailed, kSkipped };

// `run_all_tests_result` is what RUN_ALL_TESTS() returned. No case selected at all (a filter that matches nothing,
// a binary without tests) is a failure: a run that tested nothing must not pass.
inline Outcome run_outcome(int run_all_tests_result) {
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  if (run_all_tests_result != 0 || unit.Failed() || unit.failed_test_count() > 0) return Outcome::kFailed;
  if (GTEST_FLAG_GET(list_tests)) return Outcome::kPassed;  // --gtest_list_tests runs nothing, by request
  if (unit.test_to_run_count() == 0) return Outcome::kFailed;
  if (unit.skipped_test_count() == unit.test_to_run_count()) return Outcome::kSkipped;
  return Outcome::kPassed;
}

inline int exit_code(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPassed: return 0;
    case Outcome::kSkipped: return TESSERA_SKIP_RETURN_CODE;
    case Outcome::kFailed: break;
  }
  return 1;
}

inline const char* describe(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPassed: return "passed";
    case Outcome::kSkipped: return "skipped (every selected case skipped, none failed)";
    case Outcome::kFailed: break;
  }
  return "failed";
}

}  // namespace tessera::testing
