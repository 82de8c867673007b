#pragma once
// The two roles of a rank in a multi-rank command, shared by `generate`, `bench` and `serve`:
//  - followers execute the leader's step plans until it says shutdown;
//  - the leader runs the command's work and ends with a shutdown plan, also when the work throws outside a step,
//    so that the followers leave their loop and the error is reported once, by the leader.
// Both run under a rank watchdog (parallel/rank_watchdog.h): an error inside a step, where the other ranks may
// be blocked in one of its collectives, goes to the watchdog, which ends every rank with one message.
#include <exception>
#include <functional>
#include <memory>
#include <optional>

#include "parallel/rank_watchdog.h"
#include "runtime/engine/replica.h"

namespace tessera::launcher {

// A command's rank watchdog and the activity it watches. Started before the replica is built, so that the load is
// watched too (a rank that dies or stops while loading ends the job instead of leaving the others in a collective);
// the engine then reports into the same activity (ReplicaOptions::activity).
// The watchdog of the batch commands (generate, bench): peers are watched (a dead, stopped or cut-off rank ends the
// job within the peer timeout), but steps have no deadline: one step of a long prompt on a slow CPU node may run
// for minutes, and these commands have no flag to say how long is too long.
parallel::RankWatchdogOptions batch_watchdog_options();

class RankSupervision {
 public:
  // Collective over `world`: checks the layout (the replica's own check, with the same message) and connects every
  // rank's watchdog to the leader's. `on_failure` runs on the leader when the job is being ended (serve: /health
  // and the in-flight requests).
  RankSupervision(parallel::HostCommunicator& world, parallel::ParallelLayout layout, parallel::RankWatchdogOptions options,
                  parallel::FailureHandler on_failure = {});
  parallel::RankActivity& activity() { return activity_; }
  parallel::RankWatchdog& watchdog() { return *watchdog_; }
  // Every rank failed together (a CollectiveFailure): leave without the others counting it as a lost rank.
  void stop_after_collective_failure() { watchdog_->stop(); }

 private:
  std::optional<parallel::Topology> topology_;
  parallel::RankActivity activity_;
  std::unique_ptr<parallel::RankWatchdog> watchdog_;
};

// An error inside a step of this rank: the watchdog ends the job with a message saying which step and what.
[[noreturn]] void fail_in_step(runtime::Replica& replica, parallel::RankWatchdog& watchdog, const std::exception& error);

// Followers. An error here goes to the watchdog (the leader may be waiting on this rank in a collective).
int follow_leader(runtime::Replica& replica, parallel::RankWatchdog& watchdog);

// The leader: returns lead_work's exit code, rethrows its error after the shutdown (or, for an error inside a
// step, hands it to the watchdog, which ends the job).
int lead_replica(runtime::Replica& replica, parallel::RankWatchdog& watchdog, const std::function<int()>& lead_work);

}  // namespace tessera::launcher
