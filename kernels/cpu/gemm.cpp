#include "kernels/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <limits>

#include "kernels/base/error.h"

namespace tessera::kernels::cpu {
namespace {

void check_sizes(const char* op, const float* x, const float* w, const float* y, int64_t m, int64_t n, int64_t k) {
  TESSERA_CHECK(m >= 0 && n >= 0 && k >= 0, op, ": negative size (m=", m, ", n=", n, ", k=", k, ")");
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  TESSERA_CHECK(m <= kMax && n <= kMax && k <= kMax, op, ": size too large for BLAS (m=", m, ", n=", n, ", k=", k, ")");
  TESSERA_CHECK(m * n == 0 || y != nullptr, op, ": null output for a ", m, "x", n, " result");
  TESSERA_CHECK(m * k == 0 || x != nullptr, op, ": null input x of ", m, "x", k);
  TESSERA_CHECK(n * k == 0 || w != nullptr, op, ": null weight w of ", n, "x", k);
}

// y = x · wᵀ + beta * y, with beta 0 (overwrite) or 1 (accumulate); sizes already checked, none 0.
void gemm(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k, float beta) {
  const int mi = static_cast<int>(m);
  const int ni = static_cast<int>(n);
  const int ki = static_cast<int>(k);
  if (m == 1) {
    // One row (decode): y[n] = w[n, k] · x[k] is a matrix-vector product, which sgemv does faster.
    // Some OpenBLAS versions scale y by beta even when beta is 0, so NaN garbage in y would survive: clear it.
    if (beta == 0.0f) std::fill(y, y + n, 0.0f);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, ni, ki, 1.0f, w, ki, x, 1, beta, y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mi, ni, ki, 1.0f, x, ki, w, ki, beta, y, ni);
}

}  // namespace

void matmul_transposed(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k, const float* bias) {
  check_sizes("matmul_transposed", x, w, y, m, n, k);
  if (m == 0 || n == 0) return;
  if (bias == nullptr) {
    if (k == 0) {
      std::fill(y, y + m * n, 0.0f);
      return;
    }
    gemm(x, w, y, m, n, k, 0.0f);
    return;
  }
  // With a bias: rows start as the bias and BLAS accumulates onto them (as torch's addmm does).
  for (int64_t r = 0; r < m; ++r) std::copy(bias, bias + n, y + r * n);
  if (k > 0) gemm(x, w, y, m, n, k, 1.0f);
}

void matmul_transposed_accumulate(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k) {
  check_sizes("matmul_transposed_accumulate", x, w, y, m, n, k);
  if (m == 0 || n == 0 || k == 0) return;
  gemm(x, w, y, m, n, k, 1.0f);
}

void set_gemm_threads(int n) {
  TESSERA_CHECK(n >= 1, "set_gemm_threads: thread count must be >= 1, got ", n);
  openblas_set_num_threads(n);
}

int gemm_threads() { return openblas_get_num_threads(); }

}  // namespace tessera::kernels::cpu
