#pragma once
// Small inline f32 vector helpers shared by the CPU kernels (internal: not a kernel interface).
// The compiler does not reorder floating-point sums on its own (no -ffast-math), so a plain reduction loop
// stays scalar; eight independent partial sums give it the freedom to use vector registers instead.
#include <cstdint>

namespace tessera::kernels::cpu::detail {

inline constexpr int64_t kLanes = 8;

// sum_i a[i] * b[i], accumulated in f32 over eight lanes.
inline float dot(const float* a, const float* b, int64_t n) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += a[i + l] * b[i + l];
  }
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

// sum_i a[i]^2, accumulated in f32 over eight lanes.
inline float sum_squares(const float* a, int64_t n) { return dot(a, a, n); }

// y[i] += alpha * x[i].
inline void axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace tessera::kernels::cpu::detail
