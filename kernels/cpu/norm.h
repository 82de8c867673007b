#pragma once
// RMSNorm on the CPU with Hugging Face LlamaRMSNorm's semantics, all in f32:
//   variance = mean(x²) over the row;  y = weight * (x * rsqrt(variance + eps)).
#include <cstdint>

namespace tessera::kernels::cpu {

// y[r, :] = rmsnorm(x[r, :]) * weight for every row.
//   x: [rows, dim] row-major.   weight: [dim].   y: [rows, dim]; may be the same buffer as x.
void rms_norm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim, float eps);

// The pre-norm transformer step fused: residual += x; y = rmsnorm(residual) * weight, row by row.
//   residual: [rows, dim], read and updated in place (the running hidden state).
//   x: [rows, dim], the sublayer's output.   weight: [dim].
//   y: [rows, dim], overwritten; may be the same buffer as x, not as residual.
void add_rms_norm(float* residual, const float* x, const float* weight, float* y, int64_t rows, int64_t dim, float eps);

}  // namespace tessera::kernels::cpu
