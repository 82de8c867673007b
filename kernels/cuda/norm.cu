#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/norm.h"

namespace tessera::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// One block per row. With a residual, the sum is written back first (rounded to T) and the norm reads the
// rounded values, so that both passes see what the next layer will see.
template <class T, bool kFused>
__global__ void rms_norm_kernel(T* residual, const T* x, const T* __restrict__ weight, T* y, int64_t dim,
                                float eps) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const T* in = x + row * dim;
  T* res = kFused ? residual + row * dim : nullptr;
  float sum_squares = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = detail::to_f32(in[i]);
    if constexpr (kFused) {
      const T updated = detail::from_f32<T>(detail::to_f32(res[i]) + v);
      res[i] = updated;
      v = detail::to_f32(updated);
    }
    sum_squares += v * v;
  }
  const float total = detail::block_sum(sum_squares, shared);
  const float inv_rms = 1.0f / sqrtf(total / static_cast<float>(dim) + eps);  // IEEE sqrt and division, as on the CPU
  const T* src = kFused ? res : in;
  T* out = y + row * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    // HF order: (x * inv_rms) first, then times the weight.
    out[i] = detail::from_f32<T>(detail::to_f32(weight[i]) * (detail::to_f32(src[i]) * inv_rms));
  }
}

void check_args(const char* op, int64_t rows, int64_t dim, float eps) {
  TESSERA_CHECK(rows >= 0 && dim > 0 && rows <= INT32_MAX, op, " (CUDA): bad shape rows=", rows, ", dim=", dim);
  TESSERA_CHECK(eps >= 0.0f, op, " (CUDA): eps must be >= 0, got ", eps);
}

template <class T, bool kFused>
void launch(T* residual, const T* x, const T* weight, T* y, int64_t rows, int64_t dim, float eps,
            cudaStream_t stream) {
  check_args(kFused ? "add_rms_norm" : "rms_norm", rows, dim, eps);
  TESSERA_CHECK(!kFused || rows == 0 || y != residual, "add_rms_norm (CUDA): y must not alias the residual buffer");
  if (rows == 0) return;
  rms_norm_kernel<T, kFused><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(residual, x, weight, y, dim, eps);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void rms_norm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim, float eps,
              cudaStream_t stream) {
  launch<float, false>(nullptr, x, weight, y, rows, dim, eps, stream);
}
void rms_norm(const __nv_bfloat16* x, const __nv_bfloat16* weight, __nv_bfloat16* y, int64_t rows, int64_t dim,
              float eps, cudaStream_t stream) {
  launch<__nv_bfloat16, false>(nullptr, x, weight, y, rows, dim, eps, stream);
}
void add_rms_norm(float* residual, const float* x, const float* weight, float* y, int64_t rows, int64_t dim,
                  float eps, cudaStream_t stream) {
  launch<float, true>(residual, x, weight, y, rows, dim, eps, stream);
}
void add_rms_norm(__nv_bfloat16* residual, const __nv_bfloat16* x, const __nv_bfloat16* weight, __nv_bfloat16* y,
                  int64_t rows, int64_t dim, float eps, cudaStream_t stream) {
  launch<__nv_bfloat16, true>(residual, x, weight, y, rows, dim, eps, stream);
}

}  // namespace tessera::kernels::cuda
