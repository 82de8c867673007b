#include "kernels/cuda/convert.h"
#include "kernels/cuda/cuda_check.h"

namespace tessera::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr size_t kMaxBlocks = 65535;

__global__ void bf16_to_f32_kernel(const __nv_bfloat16* __restrict__ in, float* __restrict__ out, size_t count) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    out[i] = __bfloat162float(in[i]);
  }
}

__global__ void f32_to_bf16_kernel(const float* __restrict__ in, __nv_bfloat16* __restrict__ out, size_t count) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    out[i] = __float2bfloat16_rn(in[i]);
  }
}

unsigned blocks_for(size_t count) {
  const size_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

}  // namespace

void bf16_to_f32(const __nv_bfloat16* in, float* out, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  bf16_to_f32_kernel<<<blocks_for(count), kThreads, 0, stream>>>(in, out, count);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

void f32_to_bf16(const float* in, __nv_bfloat16* out, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  f32_to_bf16_kernel<<<blocks_for(count), kThreads, 0, stream>>>(in, out, count);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace tessera::kernels::cuda
