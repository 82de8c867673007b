#include "parallel/staged/pinned_buffer.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/base/error.h"

namespace tessera::parallel {

PinnedBuffer::~PinnedBuffer() {
  if (data_ != nullptr) cudaFreeHost(data_);
}

void* PinnedBuffer::reserve(size_t bytes) {
  if (bytes <= capacity_ && data_ != nullptr) return data_;
  // Grow by at least half again, so that slowly growing batches do not re-pin on every step.
  size_t target = std::max({bytes, capacity_ + capacity_ / 2, size_t{4096}});
  if (data_ != nullptr) cudaFreeHost(data_);
  data_ = nullptr;
  capacity_ = 0;
  const cudaError_t status = cudaHostAlloc(&data_, target, cudaHostAllocPortable);
  if (status != cudaSuccess) {
    data_ = nullptr;
    fail("cudaHostAlloc of a ", target, "-byte pinned staging buffer failed: ", cudaGetErrorString(status));
  }
  capacity_ = target;
  return data_;
}

std::unique_ptr<PinnedBuffer> PinnedBufferPool::take(size_t bytes) {
  std::unique_ptr<PinnedBuffer> buffer;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      // The smallest idle buffer that fits, else the largest (grown below: the least re-pinning).
      auto best = idle_.end();
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        const size_t capacity = (*it)->capacity();
        if (best == idle_.end()) {
          best = it;
          continue;
        }
        const size_t best_capacity = (*best)->capacity();
        const bool fits = capacity >= bytes, best_fits = best_capacity >= bytes;
        if ((fits && (!best_fits || capacity < best_capacity)) || (!fits && !best_fits && capacity > best_capacity)) {
          best = it;
        }
      }
      buffer = std::move(*best);
      idle_.erase(best);
    }
  }
  if (!buffer) buffer = std::make_unique<PinnedBuffer>();
  if (bytes > 0) buffer->reserve(bytes);
  return buffer;
}

void PinnedBufferPool::give_back(std::unique_ptr<PinnedBuffer> buffer) noexcept {
  if (!buffer) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.size() < keep_) idle_.push_back(std::move(buffer));
  // else: freed here (cudaFreeHost)
}

size_t PinnedBufferPool::idle() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return idle_.size();
}

}  // namespace tessera::parallel
