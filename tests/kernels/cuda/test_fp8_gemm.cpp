// The FP8 (e4m3) path: per-tensor quantisation against the host's e4m3 rounding, and the FP8 cuBLASLt GEMM
// against the CPU GEMM on the dequantised values. Needs compute capability 8.9+ (Ada, Hopper).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cuda/fp8.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "tests/support/gpu_test_support.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cuda {
namespace {

using testing_support::DeviceBuffer;
using testing_support::nv;

// e4m3 (OCP FP8, "fn" variant): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities, 0x7f/0xff NaN.
float decode_e4m3(uint8_t bits) {
  const float sign = (bits & 0x80) ? -1.0f : 1.0f;
  const int exponent = (bits >> 3) & 0x0F;
  const int mantissa = bits & 0x07;
  if (exponent == 0x0F && mantissa == 0x07) return std::nanf("");
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);  // subnormal: m / 8 * 2^-6
  return sign * std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
}

#define TESSERA_REQUIRE_FP8()                                                                       \
  do {                                                                                              \
    TESSERA_REQUIRE_GPUS(1);                                                                        \
    if (!device_supports_fp8()) GTEST_SKIP() << "skipped: no GPU with FP8 (compute capability 8.9+)"; \
  } while (false)

TEST(Fp8, DecoderKnowsTheFormat) {
  // Host-only sanity of the test's own reference decoder (runs without a GPU).
  EXPECT_EQ(decode_e4m3(0x00), 0.0f);
  EXPECT_EQ(decode_e4m3(0x38), 1.0f);
  EXPECT_EQ(decode_e4m3(0x7E), 448.0f);
  EXPECT_EQ(decode_e4m3(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(decode_e4m3(0xB8), -1.0f);
  EXPECT_TRUE(std::isnan(decode_e4m3(0x7F)));
}

struct Quantized {
  std::vector<uint8_t> bits;
  float scale;
};

Quantized quantize_on_gpu(const std::vector<float>& values) {
  DeviceBuffer<bf16> in(testing_support::to_bf16(values));
  DeviceBuffer<uint8_t> out(values.size());
  DeviceBuffer<float> scale(1), amax(1);
  quantize_fp8_e4m3(nv(in.get()), values.size(), reinterpret_cast<__nv_fp8_e4m3*>(out.get()), scale.get(), amax.get(),
                    nullptr);
  return {out.download(), scale.download()[0]};
}

TEST(Fp8, QuantisationUsesAmaxOver448AndRoundsLikeTheHost) {
  TESSERA_REQUIRE_FP8();
  auto values = testing_support::bf16_exact(testing_support::random_floats(4099, 1, -3.0f, 3.0f));
  values[17] = -5.5f;  // the absolute maximum
  const Quantized q = quantize_on_gpu(values);
  EXPECT_EQ(q.scale, 5.5f / kFp8E4m3Max);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint8_t expected = __nv_cvt_float_to_fp8(values[i] / q.scale, __NV_SATFINITE, __NV_E4M3);
    ASSERT_EQ(q.bits[i], expected) << i;
  }
  EXPECT_EQ(decode_e4m3(q.bits[17]), -448.0f);
  EXPECT_EQ(quantize_on_gpu(std::vector<float>(64, 0.0f)).scale, 1.0f);  // all zeros: scale 1, not 0/0
}

TEST(Fp8, GemmMatchesCpuOnDequantisedOperands) {
  TESSERA_REQUIRE_FP8();
  CublasLtGemm gemm;
  uint32_t seed = 40;
  for (const auto& [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 64, 64}, {7, 208, 576}, {33, 96, 1536}}) {
    const auto x = testing_support::bf16_exact(testing_support::random_floats(static_cast<size_t>(m * k), ++seed));
    const auto w = testing_support::bf16_exact(testing_support::random_floats(static_cast<size_t>(n * k), ++seed, -0.1f, 0.1f));
    const Quantized qx = quantize_on_gpu(x);
    const Quantized qw = quantize_on_gpu(w);
    std::vector<float> xf(qx.bits.size()), wf(qw.bits.size());
    for (size_t i = 0; i < xf.size(); ++i) xf[i] = decode_e4m3(qx.bits[i]);
    for (size_t i = 0; i < wf.size(); ++i) wf[i] = decode_e4m3(qw.bits[i]);
    std::vector<float> expected(static_cast<size_t>(m * n));
    cpu::matmul_transposed(xf.data(), wf.data(), expected.data(), m, n, k);
    const float scale = qx.scale * qw.scale;

    DeviceBuffer<uint8_t> dx(qx.bits), dw(qw.bits);
    DeviceBuffer<float> sx(std::vector<float>{qx.scale}), sw(std::vector<float>{qw.scale});
    DeviceBuffer<float> y(expected.size());
    gemm.matmul_transposed_fp8(reinterpret_cast<const __nv_fp8_e4m3*>(dx.get()), sx.get(),
                               reinterpret_cast<const __nv_fp8_e4m3*>(dw.get()), sw.get(), y.get(), m, n, k,
                               GemmType::kF32, nullptr);
    const auto got = y.download();
    for (size_t i = 0; i < got.size(); ++i) {
      // |e4m3| <= 448, so k * 448² bounds the sum; Hopper's FP8 accumulation keeps ~2^-12 of it at worst here.
      ASSERT_NEAR(got[i], expected[i] * scale, 5e-4f * std::sqrt(static_cast<float>(k)) * 448.0f * 448.0f * scale)
          << m << "x" << n << "x" << k << " i=" << i;
    }
  }
}

TEST(Fp8, RejectsSizesCublasCannotRun) {
  TESSERA_REQUIRE_FP8();
  CublasLtGemm gemm;
  DeviceBuffer<uint8_t> a(64), b(64);
  DeviceBuffer<float> s(1), y(16);
  const auto* pa = reinterpret_cast<const __nv_fp8_e4m3*>(a.get());
  EXPECT_THROW(gemm.matmul_transposed_fp8(pa, s.get(), pa, s.get(), y.get(), 2, 2, 10, GemmType::kF32, nullptr), Error);
}

}  // namespace
}  // namespace tessera::kernels::cuda
