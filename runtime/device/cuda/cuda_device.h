#pragma once
// The CUDA side of runtime/device: selecting this rank's GPU and the cudaMalloc-backed device memory
// under the caching pool. Built only with CUDA (target tessera_runtime_cuda).
#include <memory>

#include "runtime/device/caching_pool.h"
#include "runtime/device/device_binding.h"

namespace tessera::runtime {

struct BoundDevice {
  LocalRank local;
  DeviceBinding binding;
};

// Finds the local rank, picks the device (choose_device) and makes it current with cudaSetDevice.
BoundDevice bind_device(int ranks_per_gpu, const EnvLookup& env = process_environment());

// Free and total bytes of the current device (cudaMemGetInfo).
DeviceMemoryInfo cuda_memory_info();

// cudaMalloc/cudaFree on one device; reports out-of-memory as nullptr, so that the pool can flush its
// cache and retry before it gives up.
class CudaDeviceMemory final : public RawDeviceMemory {
 public:
  explicit CudaDeviceMemory(int device) : device_(device) {}
  void* allocate(size_t bytes) override;
  void release(void* ptr) noexcept override;
  DeviceMemoryInfo memory_info() override;
  std::string device_name() const override;

 private:
  int device_;
};

std::unique_ptr<CachingDevicePool> make_cuda_pool(int device);

}  // namespace tessera::runtime
