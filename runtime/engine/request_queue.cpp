#include "runtime/engine/request_queue.h"

namespace tessera::runtime {

RequestQueue::RequestQueue(size_t max_waiting) : max_waiting_(max_waiting) {
  TESSERA_CHECK(max_waiting >= 1, "the request queue must hold at least one request (max_queue >= 1)");
}

uint64_t RequestQueue::submit(GenerationRequest request) {
  uint64_t ticket = 0;
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw QueueClosed("the server is shutting down and accepts no new requests");
    if (pending_.submitted.size() + engine_waiting_ >= max_waiting_) {
      throw QueueFull("the waiting queue is full (" + std::to_string(max_waiting_) + " requests): retry later");
    }
    ticket = next_ticket_++;
    pending_.submitted.emplace_back(ticket, std::move(request));
  }
  work_ready_.notify_one();
  return ticket;
}

void RequestQueue::cancel(uint64_t ticket) {
  {
    std::lock_guard lock(mutex_);
    pending_.cancelled.push_back(ticket);
  }
  work_ready_.notify_one();
}

uint64_t RequestQueue::new_sibling_group() {
  std::lock_guard lock(mutex_);
  return next_group_++;
}

void RequestQueue::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  work_ready_.notify_all();
}

bool RequestQueue::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

size_t RequestQueue::waiting() const {
  std::lock_guard lock(mutex_);
  return pending_.submitted.size() + engine_waiting_;
}

void RequestQueue::wait_for_work(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  work_ready_.wait_for(lock, timeout, [&] { return !pending_.empty() || closed_ || woken_; });
  woken_ = false;
}

RequestQueue::Work RequestQueue::take() {
  std::lock_guard lock(mutex_);
  Work work = std::move(pending_);
  pending_ = Work{};
  // Taken requests count as waiting until the engine reports its scheduler's queue after this step.
  engine_waiting_ += work.submitted.size();
  return work;
}

void RequestQueue::report_engine_waiting(size_t waiting) {
  std::lock_guard lock(mutex_);
  engine_waiting_ = waiting;
}

void RequestQueue::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  work_ready_.notify_all();
}

}  // namespace tessera::runtime
