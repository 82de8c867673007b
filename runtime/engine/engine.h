#pragma once
// The engine loop of one rank. The leader (rank 0) owns the Scheduler: each step it takes the scheduler's
// StepPlan, broadcasts it over the world communicator, runs its own part, and hands the results back. Followers
// loop on receiving plans until a plan says shutdown; between plans they wait without spinning a core.
//
// Threads: every method runs on the thread that owns MPI on its rank (the engine thread); other threads reach a
// serving leader only through the RequestQueue and read its EngineStatus. What the engine thread is doing (its
// activity) is published for the rank watchdog (parallel/rank_watchdog.h), which ends the job when a step or a
// peer never finishes.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "parallel/rank_activity.h"
#include "parallel/step_plan.h"
#include "runtime/engine/engine_observer.h"
#include "runtime/engine/engine_status.h"
#include "runtime/engine/fault_injection.h"
#include "runtime/engine/request_queue.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/stage_executor.h"

namespace tessera::runtime {

struct ServeLoopOptions {
  // An idle leader checks that every follower is alive this often (a heartbeat plan and one barrier).
  std::chrono::milliseconds heartbeat_interval{1000};
};

class Engine {
 public:
  // `activity`: where to report what the engine thread does (null: the engine's own).
  Engine(parallel::Communicator& world, StageExecutor& executor, int kv_blocks, int block_size, SchedulerLimits limits,
         parallel::RankActivity* activity = nullptr);

  // Leader only.
  Scheduler& scheduler() { return scheduler_; }
  // Runs steps until every submitted request has finished.
  void run_until_idle();
  // One request, start to end (a convenience over submit + run_until_idle).
  GenerationResult generate(GenerationRequest request);
  // Serves requests from `queue` until the queue is closed and every request has finished (or `stop_now` is set:
  // every unfinished request then ends with an error). Steps while there is work; idle, it sleeps on the queue and
  // sends a heartbeat every heartbeat_interval. Reports each step to `observer` (may be null) and its liveness to
  // `status`. An error in a step fails every request, marks the status failed and is rethrown.
  void serve(RequestQueue& queue, EngineStatus& status, EngineObserver* observer, const std::atomic<bool>& stop_now,
             const ServeLoopOptions& options = {});
  // Tells every rank to leave follow().
  void shutdown();

  // Followers: execute the leader's plans until shutdown.
  void follow();

  // Any thread.
  const parallel::RankActivity& activity() const { return activity_; }
  // True while the engine thread is inside a step (or its last step threw): the other ranks may be blocked in a
  // collective of that step, so only the watchdog can end them.
  bool in_step() const;

 private:
  void step(EngineObserver* observer, std::chrono::steady_clock::time_point plan_started);
  void heartbeat();

  parallel::Communicator& world_;
  StageExecutor& executor_;
  Scheduler scheduler_;
  uint64_t next_step_ = 0;
  parallel::RankActivity own_activity_;
  parallel::RankActivity& activity_;
  FaultInjector faults_;
};

}  // namespace tessera::runtime
