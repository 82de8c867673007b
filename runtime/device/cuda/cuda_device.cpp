#include "runtime/device/cuda/cuda_device.h"

#include <cuda_runtime.h>

#include "kernels/base/error.h"
#include "kernels/cuda/cuda_check.h"

namespace tessera::runtime {

BoundDevice bind_device(int ranks_per_gpu, const EnvLookup& env) {
  BoundDevice bound;
  bound.local = detect_local_rank(env);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail("local rank ", bound.local.rank, " (", bound.local.source, ") cannot use CUDA: ", cudaGetErrorString(status));
  }
  bound.binding = choose_device(bound.local, count, ranks_per_gpu, env("CUDA_VISIBLE_DEVICES"));
  const cudaError_t set = cudaSetDevice(bound.binding.device);
  TESSERA_CHECK(set == cudaSuccess, "cudaSetDevice for ", bound.binding.describe(bound.local),
                " failed: ", cudaGetErrorString(set));
  return bound;
}

DeviceMemoryInfo cuda_memory_info() {
  DeviceMemoryInfo info;
  TESSERA_CUDA_CHECK(cudaMemGetInfo(&info.free_bytes, &info.total_bytes));
  return info;
}

void* CudaDeviceMemory::allocate(size_t bytes) {
  TESSERA_CUDA_CHECK(cudaSetDevice(device_));
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky, but clear it so that the next check does not see it
    return nullptr;
  }
  TESSERA_CHECK(status == cudaSuccess, "cudaMalloc of ", bytes, " bytes on cuda:", device_,
                " failed: ", cudaGetErrorString(status));
  return ptr;
}

void CudaDeviceMemory::release(void* ptr) noexcept {
  if (cudaSetDevice(device_) == cudaSuccess) cudaFree(ptr);
}

DeviceMemoryInfo CudaDeviceMemory::memory_info() {
  DeviceMemoryInfo info;
  if (cudaSetDevice(device_) != cudaSuccess || cudaMemGetInfo(&info.free_bytes, &info.total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return {};
  }
  return info;
}

std::string CudaDeviceMemory::device_name() const { return concat("cuda:", device_); }

std::unique_ptr<CachingDevicePool> make_cuda_pool(int device) {
  return std::make_unique<CachingDevicePool>(std::make_unique<CudaDeviceMemory>(device));
}

}  // namespace tessera::runtime
