#include "kernels/cpu/norm.h"

#include <cmath>

#include "kernels/base/error.h"
#include "kernels/cpu/vector_ops.h"

namespace tessera::kernels::cpu {
namespace {

void check_args(const char* op, int64_t rows, int64_t dim, float eps) {
  TESSERA_CHECK(rows >= 0 && dim > 0, op, ": bad shape rows=", rows, ", dim=", dim);
  TESSERA_CHECK(eps >= 0.0f, op, ": eps must be >= 0, got ", eps);
}

// One row: the scale 1/sqrt(mean(x²) + eps) in f32, then y = weight * (x * scale) in HF's order.
void normalize_row(const float* x, const float* weight, float* y, int64_t dim, float eps) {
  const float variance = detail::sum_squares(x, dim) / static_cast<float>(dim);
  const float scale = 1.0f / std::sqrt(variance + eps);
  for (int64_t i = 0; i < dim; ++i) y[i] = weight[i] * (x[i] * scale);
}

}  // namespace

void rms_norm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim, float eps) {
  check_args("rms_norm", rows, dim, eps);
  for (int64_t r = 0; r < rows; ++r) normalize_row(x + r * dim, weight, y + r * dim, dim, eps);
}

void add_rms_norm(float* residual, const float* x, const float* weight, float* y, int64_t rows, int64_t dim,
                  float eps) {
  check_args("add_rms_norm", rows, dim, eps);
  TESSERA_CHECK(rows == 0 || y != residual, "add_rms_norm: y must not alias the residual buffer");
  for (int64_t r = 0; r < rows; ++r) {
    float* res = residual + r * dim;
    const float* in = x + r * dim;
    for (int64_t i = 0; i < dim; ++i) res[i] += in[i];
    normalize_row(res, weight, y + r * dim, dim, eps);
  }
}

}  // namespace tessera::kernels::cpu
