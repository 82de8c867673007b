#pragma once
// Elementwise f32 helpers on the CPU: residual adds and biases.
#include <cstdint>

namespace tessera::kernels::cpu {

// y[i] += x[i] for i < count (the residual connection).   x, y: [count]; they may be the same buffer.
void add_inplace(float* y, const float* x, int64_t count);

// out[i] = a[i] + b[i].   a, b, out: [count]; out may be a or b.
void add(const float* a, const float* b, float* out, int64_t count);

// y[r, c] += bias[c].   y: [rows, cols] row-major, bias: [cols].
void add_bias(float* y, const float* bias, int64_t rows, int64_t cols);

// y[i] *= alpha.   y: [count].
void scale_inplace(float* y, float alpha, int64_t count);

}  // namespace tessera::kernels::cpu
