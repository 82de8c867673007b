#pragma once
// Helpers for tests of the CUDA backend: whether a GPU is present (tests skip, never pass, without one)
// and a small device buffer that copies to and from host vectors.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include "kernels/base/half.h"
#include "kernels/cuda/cuda_check.h"

namespace tessera::testing_support {

// 0 when the driver is missing or reports no device.
inline int gpu_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

// tessera::bf16 (host) and __nv_bfloat16 (CUDA) are the same 16 bits.
static_assert(sizeof(bf16) == sizeof(__nv_bfloat16));
inline __nv_bfloat16* nv(bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* nv(const bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count_ > 0) TESSERA_CUDA_CHECK(cudaMalloc(&data_, count_ * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() { return data_; }
  const T* get() const { return data_; }
  size_t size() const { return count_; }

  void upload(const std::vector<T>& host) {
    TESSERA_CHECK(host.size() == count_, "DeviceBuffer::upload: ", host.size(), " elements into ", count_);
    if (count_ > 0) TESSERA_CUDA_CHECK(cudaMemcpy(data_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    TESSERA_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> host(count_);
    if (count_ > 0) TESSERA_CUDA_CHECK(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* data_ = nullptr;
  size_t count_;
};

}  // namespace tessera::testing_support

// Skips the current test unless at least `n` GPUs are visible.
#define TESSERA_REQUIRE_GPUS(n)                                                               \
  do {                                                                                        \
    const int tessera_gpus = ::tessera::testing_support::gpu_count();                         \
    if (tessera_gpus < (n)) GTEST_SKIP() << "skipped: no GPU (" << tessera_gpus << " visible, " \
                                         << (n) << " needed)";                                \
  } while (false)
