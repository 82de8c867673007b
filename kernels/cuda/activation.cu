#include "kernels/cuda/activation.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"

namespace tessera::kernels::cuda {
namespace {

template <class T>
__global__ void silu_and_mul_kernel(const T* __restrict__ gate_up, T* __restrict__ out, int ffn) {
  const int token = blockIdx.y;
  const T* row = gate_up + static_cast<size_t>(token) * 2 * ffn;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < ffn; i += gridDim.x * blockDim.x) {
    const float gate = detail::to_f32(row[i]);
    const float up = detail::to_f32(row[ffn + i]);
    out[static_cast<size_t>(token) * ffn + i] = detail::from_f32<T>(gate / (1.0f + __expf(-gate)) * up);
  }
}

template <class T>
void launch(const T* gate_up, T* out, int tokens, int ffn, cudaStream_t stream) {
  if (tokens == 0 || ffn == 0) return;
  constexpr int kThreads = 256;
  const dim3 grid((ffn + kThreads - 1) / kThreads, tokens);
  silu_and_mul_kernel<T><<<grid, kThreads, 0, stream>>>(gate_up, out, ffn);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void silu_and_mul(const __nv_bfloat16* gate_up, __nv_bfloat16* out, int tokens, int ffn, cudaStream_t stream) {
  launch(gate_up, out, tokens, ffn, stream);
}
void silu_and_mul(const float* gate_up, float* out, int tokens, int ffn, cudaStream_t stream) {
  launch(gate_up, out, tokens, ffn, stream);
}

}  // namespace tessera::kernels::cuda
