#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/fp8.h"

namespace tessera::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr size_t kMaxBlocks = 1024;

// Non-negative floats order like their bit patterns, so an integer atomicMax finds the float maximum.
template <class T>
__global__ void amax_kernel(const T* __restrict__ in, size_t count, float* amax) {
  __shared__ float shared[32];
  float local = 0.0f;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    local = fmaxf(local, fabsf(detail::to_f32(in[i])));
  }
  for (int offset = 16; offset > 0; offset /= 2) local = fmaxf(local, __shfl_xor_sync(0xffffffffu, local, offset));
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = local;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) local = fmaxf(local, shared[w]);
    atomicMax(reinterpret_cast<unsigned int*>(amax), __float_as_uint(local));
  }
}

template <class T>
__global__ void quantize_kernel(const T* __restrict__ in, size_t count, const float* __restrict__ amax,
                                __nv_fp8_e4m3* __restrict__ out, float* __restrict__ scale) {
  const float a = *amax;
  const float s = a > 0.0f ? a / kFp8E4m3Max : 1.0f;
  if (blockIdx.x == 0 && threadIdx.x == 0) *scale = s;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < count; i += size_t{gridDim.x} * blockDim.x) {
    out[i].__x = __nv_cvt_float_to_fp8(detail::to_f32(in[i]) / s, __NV_SATFINITE, __NV_E4M3);
  }
}

template <class T>
void launch(const T* in, size_t count, __nv_fp8_e4m3* out, float* scale, float* amax_scratch, cudaStream_t stream) {
  TESSERA_CUDA_CHECK(cudaMemsetAsync(amax_scratch, 0, sizeof(float), stream));
  const size_t wanted = (count + kThreads - 1) / kThreads;
  const unsigned blocks = static_cast<unsigned>(wanted == 0 ? 1 : (wanted < kMaxBlocks ? wanted : kMaxBlocks));
  amax_kernel<T><<<blocks, kThreads, 0, stream>>>(in, count, amax_scratch);
  TESSERA_CUDA_CHECK(cudaGetLastError());
  quantize_kernel<T><<<blocks, kThreads, 0, stream>>>(in, count, amax_scratch, out, scale);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void quantize_fp8_e4m3(const __nv_bfloat16* in, size_t count, __nv_fp8_e4m3* out, float* scale, float* amax_scratch,
                       cudaStream_t stream) {
  launch(in, count, out, scale, amax_scratch, stream);
}
void quantize_fp8_e4m3(const float* in, size_t count, __nv_fp8_e4m3* out, float* scale, float* amax_scratch,
                       cudaStream_t stream) {
  launch(in, count, out, scale, amax_scratch, stream);
}

bool device_supports_fp8() {
  int device = 0;
  int major = 0;
  int minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major > 8 || (major == 8 && minor >= 9);
}

}  // namespace tessera::kernels::cuda
