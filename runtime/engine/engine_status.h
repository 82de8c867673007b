#pragma once
// What the leader's engine thread tells the rest of the process about itself, lock-free: its state and when it last
// made progress (a step, or a heartbeat every follower answered). /health reads it from an HTTP thread, so it
// tells the truth even while the engine thread is stuck in a collective with a dead rank.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace tessera::runtime {

enum class EngineState : int { kLoading = 0, kReady = 1, kDraining = 2, kStopped = 3, kFailed = 4 };
const char* engine_state_name(EngineState state);

class EngineStatus {
 public:
  using Clock = std::chrono::steady_clock;

  void set_state(EngineState state) { state_.store(static_cast<int>(state)); }
  EngineState state() const { return static_cast<EngineState>(state_.load()); }
  void fail(std::string message);
  std::string failure() const;
  // The engine thread, after every step and every answered heartbeat.
  void mark_progress() { last_progress_ns_.store(Clock::now().time_since_epoch().count()); }
  // Seconds since the last progress.
  double silence_seconds() const;
  // Ready and heard from within max_silence.
  bool healthy(std::chrono::duration<double> max_silence) const;

 private:
  std::atomic<int> state_{static_cast<int>(EngineState::kLoading)};
  std::atomic<int64_t> last_progress_ns_{Clock::now().time_since_epoch().count()};
  mutable std::mutex failure_mutex_;
  std::string failure_;
};

}  // namespace tessera::runtime
