#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/softmax.h"

namespace tessera::kernels::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<double> reference_log_softmax(const float* x, int64_t cols) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < cols; ++i) m = std::max(m, static_cast<double>(x[i]));
  double total = 0.0;
  for (int64_t i = 0; i < cols; ++i) total += std::exp(static_cast<double>(x[i]) - m);
  std::vector<double> out(static_cast<size_t>(cols));
  for (int64_t i = 0; i < cols; ++i) out[static_cast<size_t>(i)] = static_cast<double>(x[i]) - m - std::log(total);
  return out;
}

TEST(Softmax, MatchesReferenceForRandomRowsOfManySizes) {
  std::mt19937 rng(3);
  for (const int64_t cols : {1, 2, 7, 64, 1000, 49152}) {
    for (const float scale : {1.0f, 30.0f, 1000.0f}) {
      const int64_t rows = 3;
      std::uniform_real_distribution<float> dist(-scale, scale);
      std::vector<float> x(static_cast<size_t>(rows * cols));
      for (auto& v : x) v = dist(rng);
      std::vector<float> p(x.size()), lp(x.size());
      softmax(x.data(), p.data(), rows, cols);
      log_softmax(x.data(), lp.data(), rows, cols);
      for (int64_t r = 0; r < rows; ++r) {
        const auto want = reference_log_softmax(x.data() + r * cols, cols);
        double sum = 0.0;
        for (int64_t i = 0; i < cols; ++i) {
          const double w = want[static_cast<size_t>(i)];
          const auto idx = static_cast<size_t>(r * cols + i);
          ASSERT_NEAR(p[idx], std::exp(w), 1e-6 * std::exp(w) + 1e-12) << "cols " << cols << " scale " << scale;
          ASSERT_NEAR(lp[idx], w, 1e-6 * std::fabs(w) + 1e-5) << "cols " << cols << " scale " << scale;
          sum += static_cast<double>(p[idx]);
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
      }
    }
  }
}

TEST(Softmax, InPlaceAndMaskedEntries) {
  std::vector<float> x = {1.0f, kNegInf, 2.0f, kNegInf};
  softmax(x.data(), x.data(), 1, 4);
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_NEAR(x[0], 1.0 / (1.0 + std::exp(1.0)), 1e-7);
  std::vector<float> y = {1.0f, kNegInf, 2.0f};
  log_softmax(y.data(), y.data(), 1, 3);
  EXPECT_EQ(y[1], kNegInf);
  EXPECT_NEAR(y[2], -std::log1p(std::exp(-1.0)), 1e-6);
}

TEST(Softmax, FullyMaskedRowIsNanLikePyTorch) {
  std::vector<float> x = {kNegInf, kNegInf, 0.0f, 0.0f};
  std::vector<float> p(4);
  softmax(x.data(), p.data(), 2, 2);
  EXPECT_TRUE(std::isnan(p[0]) && std::isnan(p[1]));
  EXPECT_FLOAT_EQ(p[2], 0.5f);
}

TEST(Softmax, RejectsEmptyRows) {
  std::vector<float> x(4);
  EXPECT_THROW(softmax(x.data(), x.data(), 1, 0), Error);
  EXPECT_THROW(log_softmax(x.data(), x.data(), -1, 4), Error);
}

}  // namespace
}  // namespace tessera::kernels::cpu
