#pragma once
// What a rank's engine thread is doing right now, for its watchdog (parallel/rank_watchdog.h), which runs on
// another thread and must be able to say, when a peer fails, what each rank was doing: "executing step 57 for
// 6.2 s", "waiting for the next step plan". The engine thread sets it at every transition (a few times per step:
// a mutex is far below the cost of a step); any thread reads a consistent snapshot.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace tessera::parallel {

enum class Activity : uint8_t {
  kStarting = 0,        // building the replica (loading), not yet in the engine loop
  kIdle = 1,            // the leader between steps (sleeping on its request queue, planning)
  kWaitingForPlan = 2,  // a follower waiting for the leader's next step plan
  kExecutingStep = 3,   // inside a step: broadcast, forward, collectives, sampling
  kHeartbeat = 4,       // in the idle liveness barrier of every rank
  kStopping = 5,        // left the engine loop
};

struct ActivitySnapshot {
  Activity activity = Activity::kStarting;
  uint64_t step = 0;                        // the step index, for kExecutingStep and kHeartbeat
  std::chrono::milliseconds in_it{0};       // how long this activity has lasted
  std::string describe() const;             // "executing step 57 (for 6.2 s)"
};

class RankActivity {
 public:
  using Clock = std::chrono::steady_clock;

  void set(Activity activity, uint64_t step = 0) {
    std::lock_guard lock(mutex_);
    activity_ = activity;
    step_ = step;
    since_ = Clock::now();
  }
  ActivitySnapshot snapshot() const {
    std::lock_guard lock(mutex_);
    return {activity_, step_, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since_)};
  }

 private:
  mutable std::mutex mutex_;
  Activity activity_ = Activity::kStarting;
  uint64_t step_ = 0;
  Clock::time_point since_ = Clock::now();
};

}  // namespace tessera::parallel
