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

}  // namespace tessera::parallel
