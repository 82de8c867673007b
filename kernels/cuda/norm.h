#pragma once
// RMSNorm on the GPU with the CPU twin's semantics (kernels/cpu/norm.h, Hugging Face LlamaRMSNorm), f32 math:
//   variance = mean(x²) over the row;  y = weight * (x * rsqrt(variance + eps)).
// T is the activation storage type (f32 or bf16); the weight has the same type. In bf16, the fused variant
// rounds the updated residual to bf16 first and normalises that rounded value, as a bf16 model does.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::kernels::cuda {

// y[r, :] = rmsnorm(x[r, :]) * weight. x, y: [rows, dim] device, y may be x. weight: [dim].
void rms_norm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim, float eps,
              cudaStream_t stream);
void rms_norm(const __nv_bfloat16* x, const __nv_bfloat16* weight, __nv_bfloat16* y, int64_t rows, int64_t dim,
              float eps, cudaStream_t stream);

// Fused pre-norm step: residual += x; y = rmsnorm(residual) * weight. residual: [rows, dim], updated in
// place. x: [rows, dim]. y: [rows, dim], may be x, not residual.
void add_rms_norm(float* residual, const float* x, const float* weight, float* y, int64_t rows, int64_t dim,
                  float eps, cudaStream_t stream);
void add_rms_norm(__nv_bfloat16* residual, const __nv_bfloat16* x, const __nv_bfloat16* weight, __nv_bfloat16* y,
                  int64_t rows, int64_t dim, float eps, cudaStream_t stream);

}  // namespace tessera::kernels::cuda
