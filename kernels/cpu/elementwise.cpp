#include "kernels/cpu/elementwise.h"

#include "kernels/base/error.h"

namespace tessera::kernels::cpu {

void add_inplace(float* y, const float* x, int64_t count) {
  TESSERA_CHECK(count >= 0, "add_inplace: negative count ", count);
  for (int64_t i = 0; i < count; ++i) y[i] += x[i];
}

void add(const float* a, const float* b, float* out, int64_t count) {
  TESSERA_CHECK(count >= 0, "add: negative count ", count);
  for (int64_t i = 0; i < count; ++i) out[i] = a[i] + b[i];
}

void add_bias(float* y, const float* bias, int64_t rows, int64_t cols) {
  TESSERA_CHECK(rows >= 0 && cols >= 0, "add_bias: negative shape rows=", rows, ", cols=", cols);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

void scale_inplace(float* y, float alpha, int64_t count) {
  TESSERA_CHECK(count >= 0, "scale_inplace: negative count ", count);
  for (int64_t i = 0; i < count; ++i) y[i] *= alpha;
}

}  // namespace tessera::kernels::cpu
