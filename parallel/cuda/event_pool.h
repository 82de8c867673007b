#pragma once
// CUDA events for the device communicators' non-blocking operations (NCCL, staged), reused instead of created per
// operation: one event marks where an operation ends on the stream, and is polled (cudaEventQuery) until it is
// reached. Header-only: both device backends link CUDA's runtime, and nothing else needs it.
//
// Threads: a pool may be used from several threads (it locks); an event on loan belongs to one operation.
#include <cuda_runtime.h>

#include <mutex>
#include <utility>
#include <vector>

#include "kernels/base/error.h"

namespace tessera::parallel {

class CudaEventPool {
 public:
  // Keeps at most `keep` idle events; more are destroyed when given back.
  explicit CudaEventPool(size_t keep = 16) : keep_(keep) {}
  ~CudaEventPool() {
    for (cudaEvent_t event : idle_) cudaEventDestroy(event);
  }
  CudaEventPool(const CudaEventPool&) = delete;
  CudaEventPool& operator=(const CudaEventPool&) = delete;

  // An idle event, or a new one (timing disabled) on the current device. Throws tessera::Error when CUDA cannot
  // create one.
  cudaEvent_t acquire() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        cudaEvent_t event = idle_.back();
        idle_.pop_back();
        return event;
      }
    }
    cudaEvent_t event = nullptr;
    const cudaError_t status = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
    if (status != cudaSuccess) fail("cudaEventCreateWithFlags failed: ", cudaGetErrorString(status));
    std::lock_guard<std::mutex> lock(mutex_);
    ++created_;
    return event;
  }

  // Back to the pool. An event whose last record has not been reached may be given back: the next record replaces
  // it (and CUDA frees a destroyed event's resources once its work is done).
  void release(cudaEvent_t event) noexcept {
    if (event == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.size() < keep_) {
      idle_.push_back(event);
      return;
    }
    cudaEventDestroy(event);
  }

  size_t created() const {  // events created so far (for tests: the pool reuses them)
    std::lock_guard<std::mutex> lock(mutex_);
    return created_;
  }
  size_t idle() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return idle_.size();
  }

 private:
  size_t keep_;
  size_t created_ = 0;
  mutable std::mutex mutex_;
  std::vector<cudaEvent_t> idle_;
};

// One event on loan from a pool, given back when the loan ends. The pool outlives its loans.
class PooledEvent {
 public:
  PooledEvent() = default;
  explicit PooledEvent(CudaEventPool& pool) : pool_(&pool), event_(pool.acquire()) {}
  PooledEvent(PooledEvent&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)), event_(std::exchange(other.event_, nullptr)) {}
  PooledEvent& operator=(PooledEvent&& other) noexcept {
    if (this != &other) {
      reset();
      pool_ = std::exchange(other.pool_, nullptr);
      event_ = std::exchange(other.event_, nullptr);
    }
    return *this;
  }
  PooledEvent(const PooledEvent&) = delete;
  PooledEvent& operator=(const PooledEvent&) = delete;
  ~PooledEvent() { reset(); }

  cudaEvent_t get() const { return event_; }
  void reset() noexcept {
    if (pool_ != nullptr) pool_->release(event_);
    pool_ = nullptr;
    event_ = nullptr;
  }
  // Ends the loan without giving the event back (it stays alive, unowned): for an event whose work may still be
  // running after a CUDA failure, where reuse is not safe.
  void leak() noexcept {
    pool_ = nullptr;
    event_ = nullptr;
  }

 private:
  CudaEventPool* pool_ = nullptr;
  cudaEvent_t event_ = nullptr;
};

}  // namespace tessera::parallel
