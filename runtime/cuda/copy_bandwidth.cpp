#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "runtime/cuda/cuda_stage_backend.h"

namespace tessera::runtime::cuda {

double measure_device_copy_bandwidth(size_t bytes) {
  TESSERA_CHECK(bytes > 0, "copy bandwidth: 0 bytes");
  size_t free_bytes = 0, total_bytes = 0;
  TESSERA_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  TESSERA_CHECK(2 * bytes < free_bytes, "copy bandwidth: two buffers of ", bytes, " bytes do not fit in the ",
                free_bytes, " free bytes of the device (", total_bytes, " total)");
  void* src = nullptr;
  void* dst = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  double best = 0;
  try {
    TESSERA_CUDA_CHECK(cudaMalloc(&src, bytes));
    TESSERA_CUDA_CHECK(cudaMalloc(&dst, bytes));
    TESSERA_CUDA_CHECK(cudaMemset(src, 1, bytes));
    TESSERA_CUDA_CHECK(cudaEventCreate(&start));
    TESSERA_CUDA_CHECK(cudaEventCreate(&stop));
    TESSERA_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));  // warm-up
    for (int i = 0; i < 5; ++i) {
      TESSERA_CUDA_CHECK(cudaEventRecord(start));
      TESSERA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice));
      TESSERA_CUDA_CHECK(cudaEventRecord(stop));
      TESSERA_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      TESSERA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      best = std::max(best, 2.0 * static_cast<double>(bytes) / (static_cast<double>(ms) * 1e-3) / 1e9);
    }
  } catch (...) {
    cudaFree(src);
    cudaFree(dst);
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
    throw;
  }
  cudaFree(src);
  cudaFree(dst);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

}  // namespace tessera::runtime::cuda
