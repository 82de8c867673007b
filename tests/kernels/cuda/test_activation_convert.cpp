// The small element-wise GPU kernels against their CPU twins: SiLU-and-multiply and bf16 <-> f32 conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/convert.h"
#include "tests/support/gpu_test_support.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cuda {
namespace {

using testing_support::DeviceBuffer;
using testing_support::nv;

TEST(CudaActivation, SiluAndMulMatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  const int64_t tokens = 5, ffn = 1537;
  const auto gate_up = testing_support::random_floats(static_cast<size_t>(tokens * 2 * ffn), 1, -6.0f, 6.0f);
  std::vector<float> expected(static_cast<size_t>(tokens * ffn));
  cpu::silu_and_mul(gate_up.data(), expected.data(), tokens, ffn);
  DeviceBuffer<float> d(gate_up), out(expected.size());
  silu_and_mul(d.get(), out.get(), static_cast<int>(tokens), static_cast<int>(ffn), nullptr);
  const auto got = out.download();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], expected[i], 1e-5f * (1.0f + std::fabs(expected[i]))) << i;
}

TEST(CudaConvert, RoundTripsMatchHostRounding) {
  TESSERA_REQUIRE_GPUS(1);
  auto values = testing_support::random_floats(100003, 2, -1e4f, 1e4f);
  values[0] = 0.0f;
  values[1] = -0.0f;
  values[2] = 1.00390625f;  // exactly between two bf16 values: ties to even
  values[3] = std::nanf("");
  DeviceBuffer<float> d(values);
  DeviceBuffer<bf16> narrow(values.size());
  f32_to_bf16(d.get(), nv(narrow.get()), values.size(), nullptr);
  const auto got = narrow.download();
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i])) {
      EXPECT_TRUE(std::isnan(bf16_to_float(got[i])));
      continue;
    }
    ASSERT_EQ(got[i].bits, float_to_bf16(values[i]).bits) << i;
  }
  DeviceBuffer<float> wide(values.size());
  bf16_to_f32(nv(narrow.get()), wide.get(), values.size(), nullptr);
  const auto back = wide.download();
  for (size_t i = 4; i < values.size(); ++i) ASSERT_EQ(back[i], bf16_to_float(got[i])) << i;
}

}  // namespace
}  // namespace tessera::kernels::cuda
