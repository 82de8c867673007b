#include "parallel/pending_operation.h"

#include <algorithm>
#include <thread>

namespace tessera::parallel {

bool PendingOperation::test() {
  if (!backend_) return true;
  std::unique_ptr<Backend> backend = std::move(backend_);  // a throwing test leaves the handle done
  if (!backend->test()) {
    backend_ = std::move(backend);
    return false;
  }
  return true;
}

void PendingOperation::wait() {
  if (!backend_) return;
  std::unique_ptr<Backend> backend = std::move(backend_);
  backend->wait();
}

void PendingOperation::wait_without_spinning(std::chrono::microseconds spin, std::chrono::microseconds max_sleep) {
  using Clock = std::chrono::steady_clock;
  const auto spin_until = Clock::now() + spin;
  auto sleep = std::chrono::microseconds(50);
  while (!test()) {
    if (Clock::now() < spin_until) continue;
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, max_sleep);
  }
}

void PendingOperation::finish_quietly() noexcept {
  if (!backend_) return;
  std::unique_ptr<Backend> backend = std::move(backend_);
  try {
    if (backend->test()) return;
  } catch (...) {
    return;  // it failed: nothing is pending any more
  }
  backend->abandon();
}

}  // namespace tessera::parallel
