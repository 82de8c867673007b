#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/norm.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cpu {
namespace {

using testing_support::random_vector;

// HF LlamaRMSNorm in double.
std::vector<double> reference(const std::vector<float>& x, const std::vector<float>& w, int64_t rows, int64_t dim,
                              float eps) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum += std::pow(static_cast<double>(x[static_cast<size_t>(r * dim + i)]), 2);
    const double scale = 1.0 / std::sqrt(sum / static_cast<double>(dim) + static_cast<double>(eps));
    for (int64_t i = 0; i < dim; ++i) {
      const auto idx = static_cast<size_t>(r * dim + i);
      y[idx] = static_cast<double>(w[static_cast<size_t>(i)]) * static_cast<double>(x[idx]) * scale;
    }
  }
  return y;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 2e-6 * std::fabs(want[i]) + 1e-7) << "i=" << i;
  }
}

struct Case {
  int64_t rows, dim;
  float scale, eps;
};

class RmsNormCases : public ::testing::TestWithParam<Case> {};

TEST_P(RmsNormCases, MatchesDoubleReference) {
  const auto [rows, dim, scale, eps] = GetParam();
  const auto x = random_vector(rows * dim, 1, scale);
  const auto w = random_vector(dim, 2, 2.0f);
  std::vector<float> y(x.size());
  rms_norm(x.data(), w.data(), y.data(), rows, dim, eps);
  expect_close(y, reference(x, w, rows, dim, eps));
  // In place gives the same.
  std::vector<float> in_place = x;
  rms_norm(in_place.data(), w.data(), in_place.data(), rows, dim, eps);
  EXPECT_EQ(in_place, y);
}

TEST_P(RmsNormCases, FusedResidualAddMatchesAddThenNorm) {
  const auto [rows, dim, scale, eps] = GetParam();
  const auto residual0 = random_vector(rows * dim, 3, scale);
  const auto x = random_vector(rows * dim, 4, scale);
  const auto w = random_vector(dim, 5, 2.0f);
  std::vector<float> residual = residual0;
  std::vector<float> y(x.size());
  add_rms_norm(residual.data(), x.data(), w.data(), y.data(), rows, dim, eps);
  std::vector<float> sum(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    sum[i] = residual0[i] + x[i];
    EXPECT_EQ(residual[i], sum[i]) << "the residual must hold the f32 sum";
  }
  expect_close(y, reference(sum, w, rows, dim, eps));
  // y may be the sublayer output buffer itself.
  std::vector<float> residual2 = residual0;
  std::vector<float> x2 = x;
  add_rms_norm(residual2.data(), x2.data(), w.data(), x2.data(), rows, dim, eps);
  EXPECT_EQ(x2, y);
  EXPECT_EQ(residual2, residual);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNormCases,
                         ::testing::Values(Case{1, 1, 1.0f, 1e-5f}, Case{3, 7, 1.0f, 1e-6f}, Case{2, 64, 10.0f, 1e-5f},
                                           Case{5, 576, 1.0f, 1e-5f}, Case{1, 4097, 3.0f, 1e-6f},
                                           // values so small that eps dominates the variance
                                           Case{2, 33, 1e-3f, 1e-5f}));

TEST(RmsNorm, ZeroRowGivesZeros) {
  const std::vector<float> x(8, 0.0f);
  const std::vector<float> w(8, 1.0f);
  std::vector<float> y(8, 1.0f);
  rms_norm(x.data(), w.data(), y.data(), 1, 8, 1e-5f);
  EXPECT_EQ(y, std::vector<float>(8, 0.0f));
}

TEST(RmsNorm, RejectsBadArguments) {
  std::vector<float> buf(8, 1.0f);
  EXPECT_THROW(rms_norm(buf.data(), buf.data(), buf.data(), 1, 0, 1e-5f), Error);
  EXPECT_THROW(rms_norm(buf.data(), buf.data(), buf.data(), -1, 8, 1e-5f), Error);
  EXPECT_THROW(rms_norm(buf.data(), buf.data(), buf.data(), 1, 8, -1.0f), Error);
  std::vector<float> other(8, 1.0f);
  EXPECT_THROW(add_rms_norm(buf.data(), other.data(), other.data(), buf.data(), 1, 8, 1e-5f), Error);
}

}  // namespace
}  // namespace tessera::kernels::cpu
