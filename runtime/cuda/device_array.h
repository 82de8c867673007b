#pragma once
// A typed array in device memory from the caching pool (runtime/device/caching_pool.h), returned to it on
// destruction, and the host <-> device copies the CUDA stage makes with it.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "runtime/device/caching_pool.h"

namespace tessera::runtime::cuda {

template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(CachingDevicePool& pool, int64_t count)
      : block_(pool, static_cast<size_t>(count) * sizeof(T)), count_(count) {}

  T* get() const { return static_cast<T*>(block_.get()); }
  int64_t size() const { return count_; }
  size_t bytes() const { return static_cast<size_t>(count_) * sizeof(T); }
  bool empty() const { return count_ == 0; }

  // Asynchronous on `stream`; from pageable host memory the copy has been staged when the call returns.
  void upload(const T* host, int64_t count, cudaStream_t stream, int64_t offset = 0) {
    TESSERA_CHECK(offset >= 0 && count >= 0 && offset + count <= count_, "DeviceArray: upload of ", count,
                  " elements at ", offset, " into ", count_);
    if (count > 0) {
      TESSERA_CUDA_CHECK(cudaMemcpyAsync(get() + offset, host, static_cast<size_t>(count) * sizeof(T),
                                         cudaMemcpyHostToDevice, stream));
    }
  }
  void zero(cudaStream_t stream) {
    if (count_ > 0) TESSERA_CUDA_CHECK(cudaMemsetAsync(get(), 0, bytes(), stream));
  }

 private:
  PooledBlock block_;
  int64_t count_ = 0;
};

}  // namespace tessera::runtime::cuda
