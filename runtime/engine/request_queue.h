#pragma once
// The hand-over from the HTTP threads to the engine thread: the only way a request reaches the scheduler while
// serving. Any thread may submit or cancel; only the engine thread takes (Engine::serve). Bounded: at most
// max_waiting requests wait for admission (here or in the scheduler's queue), beyond that submit throws QueueFull
// and the frontend answers 429. After close() (drain, shutdown) submit throws QueueClosed (503).
// Never blocks a submitter for longer than a mutex hold; the engine thread sleeps in wait_for_work while idle.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/engine/scheduler.h"

namespace tessera::runtime {

class QueueFull : public Error {
 public:
  using Error::Error;
};
class QueueClosed : public Error {
 public:
  using Error::Error;
};

class RequestQueue {
 public:
  explicit RequestQueue(size_t max_waiting);

  // Any thread. Returns a ticket for cancel(). The request's callbacks will run on the engine thread.
  uint64_t submit(GenerationRequest request);
  // Any thread; an unknown or finished ticket is ignored.
  void cancel(uint64_t ticket);
  // A fresh non-zero GenerationRequest::sibling_group.
  uint64_t new_sibling_group();
  void close();
  bool closed() const;
  // Requests waiting for admission: not yet taken, plus what the engine last reported as waiting in its scheduler.
  size_t waiting() const;
  size_t max_waiting() const { return max_waiting_; }

  // Engine thread.
  struct Work {
    std::vector<std::pair<uint64_t, GenerationRequest>> submitted;
    std::vector<uint64_t> cancelled;
    bool empty() const { return submitted.empty() && cancelled.empty(); }
  };
  // Returns when there is work, when the queue is closed or woken, or after `timeout`.
  void wait_for_work(std::chrono::milliseconds timeout);
  Work take();
  void report_engine_waiting(size_t waiting);
  // Wakes the engine thread (a signal arrived, a state changed).
  void wake();

 private:
  const size_t max_waiting_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  Work pending_;
  size_t engine_waiting_ = 0;
  uint64_t next_ticket_ = 1;
  uint64_t next_group_ = 1;
  bool closed_ = false;
  bool woken_ = false;
};

}  // namespace tessera::runtime
