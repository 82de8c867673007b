#include "runtime/frontend/result_stream.h"

#include <utility>

namespace tessera::frontend {

void ResultStream::push(StreamEvent event) {
  event.at = std::chrono::steady_clock::now();
  std::function<void()> notify;
  {
    std::lock_guard lock(mutex_);
    if (detached_) return;
    events_.push_back(std::move(event));
    if (!wake_pending_) notify = notify_;
    wake_pending_ = true;
  }
  if (notify) notify();
}

void ResultStream::detach() {
  std::function<void()> dropped;
  {
    std::lock_guard lock(mutex_);
    detached_ = true;
    events_.clear();
    dropped = std::move(notify_);  // released outside the lock: it may own the consumer
    notify_ = nullptr;
  }
}

std::vector<StreamEvent> ResultStream::take() {
  std::lock_guard lock(mutex_);
  wake_pending_ = false;
  return std::exchange(events_, {});
}

}  // namespace tessera::frontend
