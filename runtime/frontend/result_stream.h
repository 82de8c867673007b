#pragma once
// The per-request hand-over from the engine thread to the connection that serves the request. The engine thread
// pushes (never blocks beyond a short mutex hold, never touches a socket); the connection's strand takes the
// events and writes. `notify` is called when events arrive and no wake-up is pending, so a fast producer does not
// flood the strand: it posts the consumer onto the connection's executor.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "kernels/cpu/logprobs.h"
#include "runtime/engine/scheduler.h"

namespace tessera::frontend {

struct StreamEvent {
  enum class Kind { kToken, kPromptLogprobs, kFinish };
  Kind kind = Kind::kToken;
  int choice = 0;
  int32_t token = 0;                                   // kToken
  std::optional<kernels::cpu::RowLogprobs> logprobs;   // kToken (when asked), kPromptLogprobs
  int position = 0;                                    // kPromptLogprobs
  runtime::GenerationResult result;                    // kFinish
  std::chrono::steady_clock::time_point at;            // when the engine produced it
};

class ResultStream {
 public:
  ResultStream() = default;
  // Set once, before the first push.
  void set_notify(std::function<void()> notify) {
    std::lock_guard lock(mutex_);
    notify_ = std::move(notify);
  }
  // Engine thread.
  void push(StreamEvent event);
  // The consumer: every event since the last take, in order.
  std::vector<StreamEvent> take();
  // No more notifications (the consumer is done); events still arriving are dropped.
  void detach();

 private:
  std::function<void()> notify_;
  std::mutex mutex_;
  std::vector<StreamEvent> events_;
  bool wake_pending_ = false;
  bool detached_ = false;
};

}  // namespace tessera::frontend
