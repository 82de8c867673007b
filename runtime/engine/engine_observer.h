#pragma once
// What the serving engine loop reports after each step, for metrics. Called on the engine thread: an
// implementation must only record (atomics, a lock-free registry), never block.
#include <cstddef>
#include <cstdint>

#include "runtime/engine/scheduler.h"

namespace tessera::runtime {

struct StepReport {
  size_t running = 0;
  size_t waiting = 0;
  int kv_used_blocks = 0;
  int kv_total_blocks = 0;
  size_t tokens = 0;             // tokens the step ran (decode tokens + prefill chunks)
  double plan_seconds = 0;       // leader: taking requests, scheduling, handing results to the streams
  // The step across the ranks (broadcast, compute, transfers, sampling), from its launch (or the previous plan's
  // completion, if later: plans in flight together share no seconds) to its outputs' arrival; sums to wall time.
  double execute_seconds = 0;
  SchedulerStats totals;         // cumulative
};

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void on_step(const StepReport& report) = 0;
};

}  // namespace tessera::runtime
