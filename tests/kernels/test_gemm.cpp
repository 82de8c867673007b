#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/gemm.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cpu {
namespace {

using testing_support::random_vector;

// y = x · wᵀ (+ bias) in double, with the error bound of an f32 dot product: sum |x||w| * k * eps.
struct Reference {
  std::vector<double> y;
  std::vector<double> bound;
};

Reference reference(const std::vector<float>& x, const std::vector<float>& w, const float* bias, int64_t m, int64_t n,
                    int64_t k) {
  Reference r{std::vector<double>(static_cast<size_t>(m * n)), std::vector<double>(static_cast<size_t>(m * n))};
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = bias ? static_cast<double>(bias[j]) : 0.0;
      double magnitude = bias ? std::fabs(static_cast<double>(bias[j])) : 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double term = static_cast<double>(x[static_cast<size_t>(i * k + p)]) *
                            static_cast<double>(w[static_cast<size_t>(j * k + p)]);
        sum += term;
        magnitude += std::fabs(term);
      }
      r.y[static_cast<size_t>(i * n + j)] = sum;
      r.bound[static_cast<size_t>(i * n + j)] = magnitude * static_cast<double>(k + 1) * 1.2e-7 + 1e-12;
    }
  }
  return r;
}

struct Shape {
  int64_t m, n, k;
};

class GemmShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(GemmShapes, MatchesDoubleReferenceWithAndWithoutBias) {
  const auto [m, n, k] = GetParam();
  const auto x = random_vector(m * k, 1);
  const auto w = random_vector(n * k, 2);
  const auto bias = random_vector(n, 3);
  for (const bool with_bias : {false, true}) {
    // NaN garbage in y must not leak through (beta = 0 semantics).
    std::vector<float> y(static_cast<size_t>(m * n), std::numeric_limits<float>::quiet_NaN());
    const float* b = with_bias ? bias.data() : nullptr;
    matmul_transposed(x.data(), w.data(), y.data(), m, n, k, b);
    const Reference ref = reference(x, w, b, m, n, k);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], ref.y[i], ref.bound[i])
          << "m=" << m << " n=" << n << " k=" << k << " bias=" << with_bias << " i=" << i;
    }
  }
}

TEST_P(GemmShapes, AccumulateAddsToExistingOutput) {
  const auto [m, n, k] = GetParam();
  const auto x = random_vector(m * k, 4);
  const auto w = random_vector(n * k, 5);
  const auto initial = random_vector(m * n, 6);
  std::vector<float> y = initial;
  matmul_transposed_accumulate(x.data(), w.data(), y.data(), m, n, k);
  // The initial values play the role of a per-element bias.
  const Reference ref = reference(x, w, nullptr, m, n, k);
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_NEAR(y[i], ref.y[i] + static_cast<double>(initial[i]), ref.bound[i] + 1e-7) << "i=" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, GemmShapes,
                         ::testing::Values(Shape{1, 1, 1}, Shape{1, 7, 13}, Shape{1, 576, 64}, Shape{2, 3, 5},
                                           Shape{5, 1, 9}, Shape{17, 33, 65}, Shape{64, 96, 128}, Shape{3, 5, 0},
                                           Shape{0, 4, 3}, Shape{4, 0, 3}));

TEST(Gemm, DecodeRowMatchesTheSameRowOfABatch) {
  // m == 1 goes through sgemv, m > 1 through sgemm: both must compute the same linear layer.
  const int64_t n = 37, k = 29;
  const auto x = random_vector(3 * k, 7);
  const auto w = random_vector(n * k, 8);
  const auto bias = random_vector(n, 9);
  std::vector<float> batch(static_cast<size_t>(3 * n));
  matmul_transposed(x.data(), w.data(), batch.data(), 3, n, k, bias.data());
  for (int64_t r = 0; r < 3; ++r) {
    std::vector<float> row(static_cast<size_t>(n));
    matmul_transposed(x.data() + r * k, w.data(), row.data(), 1, n, k, bias.data());
    for (int64_t j = 0; j < n; ++j)
      EXPECT_NEAR(row[static_cast<size_t>(j)], batch[static_cast<size_t>(r * n + j)], 1e-5);
  }
}

TEST(Gemm, ZeroInnerDimensionGivesBiasOrZero) {
  std::vector<float> y(6, 5.0f);
  const std::vector<float> bias = {1.0f, -2.0f, 3.0f};
  matmul_transposed(nullptr, nullptr, y.data(), 2, 3, 0, bias.data());
  EXPECT_EQ(y, (std::vector<float>{1.0f, -2.0f, 3.0f, 1.0f, -2.0f, 3.0f}));
  matmul_transposed(nullptr, nullptr, y.data(), 2, 3, 0);
  EXPECT_EQ(y, std::vector<float>(6, 0.0f));
}

TEST(Gemm, RejectsBadSizes) {
  std::vector<float> buffer(16, 0.0f);
  EXPECT_THROW(matmul_transposed(buffer.data(), buffer.data(), buffer.data(), -1, 2, 2), Error);
  EXPECT_THROW(matmul_transposed(buffer.data(), buffer.data(), buffer.data(), 2, 2, int64_t{1} << 32), Error);
  EXPECT_THROW(matmul_transposed(nullptr, buffer.data(), buffer.data(), 2, 2, 2), Error);
  EXPECT_THROW(matmul_transposed_accumulate(buffer.data(), nullptr, buffer.data(), 2, 2, 2), Error);
}

TEST(Gemm, ThreadCountIsSettable) {
  const int before = gemm_threads();
  EXPECT_GE(before, 1);
  set_gemm_threads(1);
  EXPECT_EQ(gemm_threads(), 1);
  EXPECT_THROW(set_gemm_threads(0), Error);
  set_gemm_threads(before);
}

}  // namespace
}  // namespace tessera::kernels::cpu
