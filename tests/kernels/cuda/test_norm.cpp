// RMSNorm and the fused residual + RMSNorm on the GPU against the CPU twin.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/norm.h"
#include "kernels/cuda/norm.h"
#include "tests/support/gpu_test_support.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cuda {
namespace {

using testing_support::DeviceBuffer;
using testing_support::nv;

TEST(CudaNorm, RmsNormF32MatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  for (const auto& [rows, dim] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {5, 576}, {2, 4099}, {33, 64}}) {
    const auto x = testing_support::random_floats(rows * dim, 1, -3.0f, 3.0f);
    const auto weight = testing_support::random_floats(dim, 2, 0.5f, 1.5f);
    std::vector<float> expected(x.size());
    cpu::rms_norm(x.data(), weight.data(), expected.data(), rows, dim, 1e-5f);
    DeviceBuffer<float> dx(x), dw(weight), dy(x.size());
    rms_norm(dx.get(), dw.get(), dy.get(), rows, dim, 1e-5f, nullptr);
    const auto got = dy.download();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], expected[i], 1e-5f * (1.0f + std::fabs(expected[i]))) << i;
    rms_norm(dx.get(), dw.get(), dx.get(), rows, dim, 1e-5f, nullptr);  // in place
    const auto in_place = dx.download();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(in_place[i], got[i]) << i;
  }
}

TEST(CudaNorm, AddRmsNormF32UpdatesResidual) {
  TESSERA_REQUIRE_GPUS(1);
  const int64_t rows = 7, dim = 577;
  const auto residual = testing_support::random_floats(rows * dim, 3, -2.0f, 2.0f);
  const auto x = testing_support::random_floats(rows * dim, 4);
  const auto weight = testing_support::random_floats(dim, 5, 0.5f, 1.5f);
  std::vector<float> expected_residual = residual;
  std::vector<float> expected(x.size());
  cpu::add_rms_norm(expected_residual.data(), x.data(), weight.data(), expected.data(), rows, dim, 1e-6f);
  DeviceBuffer<float> dr(residual), dx(x), dw(weight);
  add_rms_norm(dr.get(), dx.get(), dw.get(), dx.get(), rows, dim, 1e-6f, nullptr);  // y aliases x, as allowed
  const auto got_residual = dr.download();
  const auto got = dx.download();
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got_residual[i], expected_residual[i]) << i;  // one f32 addition, exact
    ASSERT_NEAR(got[i], expected[i], 1e-5f * (1.0f + std::fabs(expected[i]))) << i;
  }
  EXPECT_THROW(add_rms_norm(dr.get(), dx.get(), dw.get(), dr.get(), rows, dim, 1e-6f, nullptr), Error);
}

TEST(CudaNorm, Bf16RoundsResidualThenNormalises) {
  TESSERA_REQUIRE_GPUS(1);
  const int64_t rows = 4, dim = 193;
  const auto residual = testing_support::bf16_exact(testing_support::random_floats(rows * dim, 6, -2.0f, 2.0f));
  const auto x = testing_support::bf16_exact(testing_support::random_floats(rows * dim, 7));
  const auto weight = testing_support::bf16_exact(testing_support::random_floats(dim, 8, 0.5f, 1.5f));
  // Reference: the bf16 model's arithmetic done in f32 on the CPU: residual rounded to bf16, then normalised.
  std::vector<float> rounded_residual(residual.size());
  for (size_t i = 0; i < residual.size(); ++i) rounded_residual[i] = bf16_to_float(float_to_bf16(residual[i] + x[i]));
  std::vector<float> expected(x.size());
  cpu::rms_norm(rounded_residual.data(), weight.data(), expected.data(), rows, dim, 1e-5f);
  DeviceBuffer<bf16> dr(testing_support::to_bf16(residual)), dx(testing_support::to_bf16(x)),
      dw(testing_support::to_bf16(weight)), dy(x.size());
  add_rms_norm(nv(dr.get()), nv(dx.get()), nv(dw.get()), nv(dy.get()), rows, dim, 1e-5f, nullptr);
  const auto got_residual = testing_support::to_f32(dr.download());
  const auto got = testing_support::to_f32(dy.download());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got_residual[i], rounded_residual[i]) << i;
    ASSERT_NEAR(got[i], expected[i], 0.0079f * std::fabs(expected[i]) + 1e-6f) << i;  // one bf16 ulp
  }
}

}  // namespace
}  // namespace tessera::kernels::cuda
