#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/base/half.h"

namespace tessera {
namespace {

TEST(Bf16, RoundTripAndRoundToNearestEven) {
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-3.5f)), -3.5f);
  // 1 + 2^-8 is exactly half way between two bf16 values: ties go to the even mantissa (1.0).
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  // 1 + 3 * 2^-8 is half way too and rounds up to the even one (1 + 2^-6... i.e. 1.015625).
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)), 1.015625f);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::infinity()))));
}

TEST(Fp16, KnownValuesAndSubnormals) {
  EXPECT_EQ(float_to_fp16(1.0f).bits, 0x3c00);
  EXPECT_EQ(float_to_fp16(-2.0f).bits, 0xc000);
  EXPECT_EQ(float_to_fp16(65504.0f).bits, 0x7bff);
  EXPECT_EQ(float_to_fp16(1e6f).bits, 0x7c00);
  EXPECT_EQ(fp16_to_float(fp16{0x0001}), std::ldexp(1.0f, -24));
  EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -24)).bits, 0x0001);
  EXPECT_EQ(fp16_to_float(fp16{0x3555}), 0.333251953125f);
  // Every finite fp16 value survives a round trip through f32.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const fp16 h{static_cast<uint16_t>(bits)};
    const float f = fp16_to_float(h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_fp16(f).bits, h.bits) << std::hex << bits;
  }
}

}  // namespace
}  // namespace tessera
