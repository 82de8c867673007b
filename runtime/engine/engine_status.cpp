#include "runtime/engine/engine_status.h"

namespace tessera::runtime {

const char* engine_state_name(EngineState state) {
  switch (state) {
    case EngineState::kLoading: return "loading";
    case EngineState::kReady: return "ready";
    case EngineState::kDraining: return "draining";
    case EngineState::kStopped: return "stopped";
    case EngineState::kFailed: return "failed";
  }
  return "unknown";
}

void EngineStatus::fail(std::string message) {
  {
    std::lock_guard lock(failure_mutex_);
    failure_ = std::move(message);
  }
  set_state(EngineState::kFailed);
}

std::string EngineStatus::failure() const {
  std::lock_guard lock(failure_mutex_);
  return failure_;
}

double EngineStatus::silence_seconds() const {
  const auto last = Clock::time_point(Clock::duration(last_progress_ns_.load()));
  return std::chrono::duration<double>(Clock::now() - last).count();
}

bool EngineStatus::healthy(std::chrono::duration<double> max_silence) const {
  return state() == EngineState::kReady && silence_seconds() <= max_silence.count();
}

}  // namespace tessera::runtime
