#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/elementwise.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cpu {
namespace {

using testing_support::random_vector;

TEST(Elementwise, AddsAndScales) {
  const auto a = random_vector(13, 4);
  const auto b = random_vector(13, 5);
  std::vector<float> sum(13);
  add(a.data(), b.data(), sum.data(), 13);
  std::vector<float> y = a;
  add_inplace(y.data(), b.data(), 13);
  for (size_t i = 0; i < 13; ++i) {
    EXPECT_EQ(sum[i], a[i] + b[i]);
    EXPECT_EQ(y[i], a[i] + b[i]);
  }
  scale_inplace(y.data(), 0.5f, 13);
  for (size_t i = 0; i < 13; ++i) EXPECT_EQ(y[i], (a[i] + b[i]) * 0.5f);
  EXPECT_THROW(add_inplace(y.data(), b.data(), -1), Error);
}

TEST(Elementwise, AddBiasToEveryRow) {
  const int64_t rows = 4, cols = 5;
  const auto x = random_vector(rows * cols, 6);
  const auto bias = random_vector(cols, 7);
  std::vector<float> y = x;
  add_bias(y.data(), bias.data(), rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const auto i = static_cast<size_t>(r * cols + c);
      EXPECT_EQ(y[i], x[i] + bias[static_cast<size_t>(c)]);
    }
  }
}

}  // namespace
}  // namespace tessera::kernels::cpu
