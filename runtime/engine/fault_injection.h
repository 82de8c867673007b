#pragma once
// A test-only hook that makes one rank fail inside a step, so that the tests of the rank watchdog
// (tests/e2e/serve/serve_faults_test.py) can exercise the failure paths that a healthy run never takes: an
// exception on the leader or on a follower in the middle of a step, and an engine thread that hangs while its
// process stays alive. Read once from the environment; unset (every production run), it does nothing.
//
//   TESSERA_TEST_FAULT=<kind>:<rank>:<work step>    kind: throw | hang
//
// The work step counts the plans that carry sequences (not heartbeats), from 1, so that a test can aim at a step
// with requests in flight. Anything else in the variable is an error naming it.
#include <cstdint>
#include <optional>
#include <string>

#include "parallel/step_plan.h"

namespace tessera::runtime {

class FaultInjector {
 public:
  enum class Kind { kThrow, kHang };

  // From TESSERA_TEST_FAULT for this world rank; throws tessera::Error on a malformed value.
  static FaultInjector from_environment(int world_rank);
  // "throw:0:12"; throws on a malformed spec.
  static FaultInjector parse(const std::string& spec, int world_rank);

  // The engine thread, after it received (follower) or broadcast (leader) `plan`, before executing it.
  void before_execute(const parallel::StepPlan& plan);

 private:
  struct Fault {
    Kind kind;
    uint64_t work_step;
  };
  std::optional<Fault> fault_;  // aimed at this rank
  uint64_t work_steps_ = 0;
};

}  // namespace tessera::runtime
