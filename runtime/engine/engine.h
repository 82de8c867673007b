#pragma once
// The engine loop of one rank. The leader (rank 0) owns the Scheduler: each step it takes the scheduler's
// StepPlan, broadcasts it over the world communicator, runs its own part, and hands the sampled tokens back.
// Followers loop on receiving plans until a plan says shutdown.
#include <cstdint>
#include <functional>

#include "parallel/step_plan.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/stage_executor.h"

namespace tessera::runtime {

class Engine {
 public:
  Engine(parallel::Communicator& world, StageExecutor& executor, int kv_blocks, int block_size, SchedulerLimits limits);

  // Leader only.
  Scheduler& scheduler() { return scheduler_; }
  // Runs steps until every submitted request has finished.
  void run_until_idle();
  // One request, start to end (a convenience over submit + run_until_idle). Calls on_token for every id.
  GenerationResult generate(GenerationRequest request);
  // Tells every rank to leave follow().
  void shutdown();

  // Followers: execute the leader's plans until shutdown.
  void follow();

 private:
  void step();

  parallel::Communicator& world_;
  StageExecutor& executor_;
  Scheduler scheduler_;
  uint64_t next_step_ = 0;
};

}  // namespace tessera::runtime
