#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>

#include "kernels/base/error.h"

namespace tessera::kernels::cpu {
namespace {

void check_shape(const char* op, int64_t rows, int64_t cols) {
  TESSERA_CHECK(rows >= 0 && cols > 0, op, ": bad shape rows=", rows, ", cols=", cols);
}

float row_max(const float* x, int64_t cols) {
  float m = x[0];
  for (int64_t i = 1; i < cols; ++i) m = std::max(m, x[i]);
  return m;
}

}  // namespace

void softmax(const float* x, float* y, int64_t rows, int64_t cols) {
  check_shape("softmax", rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * cols;
    float* out = y + r * cols;
    const float m = row_max(in, cols);
    // The sum of up to `cols` terms in [0, 1] goes through double: vocabulary-sized rows stay accurate.
    double total = 0.0;
    for (int64_t i = 0; i < cols; ++i) {
      out[i] = std::exp(in[i] - m);
      total += static_cast<double>(out[i]);
    }
    const auto inv_total = static_cast<float>(1.0 / total);
    for (int64_t i = 0; i < cols; ++i) out[i] *= inv_total;
  }
}

void log_softmax(const float* x, float* y, int64_t rows, int64_t cols) {
  check_shape("log_softmax", rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * cols;
    float* out = y + r * cols;
    const float m = row_max(in, cols);
    double total = 0.0;
    for (int64_t i = 0; i < cols; ++i) total += static_cast<double>(std::exp(in[i] - m));
    const float log_total = static_cast<float>(std::log(total));
    for (int64_t i = 0; i < cols; ++i) out[i] = (in[i] - m) - log_total;
  }
}

}  // namespace tessera::kernels::cpu
