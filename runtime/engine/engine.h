#pragma once
// The engine loop of one rank. The leader (rank 0) owns the Scheduler: each step it takes the scheduler's
// StepPlan, publishes it to every rank (parallel/step_plan_channel.h), runs its own part, and hands the results back.
// Followers loop on receiving plans until a plan says shutdown; between plans they wait without spinning a core.
//
// Micro-batches (pp > 1): the leader keeps up to SchedulerLimits::micro_batches plans in flight, each over its own
// sequences. It publishes and launches plans until the pipeline is full, then waits for the oldest plan's results,
// completes it and plans that micro-batch's next step, so that stage s works on micro-batch k while stage s + 1
// works on k - 1. Plans complete in launch order (every stage runs them in that order).
//
// Threads: every method runs on the thread that owns MPI on its rank (the engine thread); other threads reach a
// serving leader only through the RequestQueue and read its EngineStatus. What the engine thread is doing (its
// activity) is published for the rank watchdog (parallel/rank_watchdog.h), which ends the job when a step or a
// peer never finishes.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>

#include "parallel/rank_activity.h"
#include "parallel/step_plan.h"
#include "parallel/step_plan_channel.h"
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
  Engine(parallel::HostCommunicator& world, StageExecutor& executor, int kv_blocks, int block_size, SchedulerLimits limits,
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
  // True while the engine thread is inside a step or has plans in flight (or its last step threw): the other ranks
  // may be blocked in a collective of that step, so only the watchdog can end them.
  bool in_step() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct InFlightPlan {
    parallel::StepPlan plan;
    PendingStepOutputs outputs;
    Clock::time_point launched;  // when its launch began (a stage of this rank may compute it inside launch)
    double planning_seconds = 0;
  };
  // Leader: fills the pipeline with plans, then completes the oldest one in flight (if any).
  void advance(EngineObserver* observer);
  // Plans, publishes and launches the next plan; false when it had no sequences (nothing more to launch now).
  bool launch_next(EngineObserver* observer);
  void complete_oldest(EngineObserver* observer);
  void report(EngineObserver* observer, const parallel::StepPlan& plan, double execute_seconds,
              double plan_seconds) const;
  bool busy() const { return !scheduler_.idle() || !in_flight_.empty(); }
  void heartbeat();

  parallel::HostCommunicator& world_;
  StageExecutor& executor_;
  Scheduler scheduler_;
  parallel::StepPlanChannel plans_;
  std::deque<InFlightPlan> in_flight_;  // leader: launched, results not yet completed; oldest first
  size_t pipeline_depth_ = 1;
  uint64_t launched_with_sequences_ = 0;  // numbers the micro-batches
  // When the last plan completed: a plan's execution time is counted from the later of its launch and this, so that
  // the plans in flight together do not count the same seconds twice (StepReport::execute_seconds).
  Clock::time_point last_completed_{};
  uint64_t next_step_ = 0;
  parallel::RankActivity own_activity_;
  parallel::RankActivity& activity_;
  FaultInjector faults_;
};

}  // namespace tessera::runtime
