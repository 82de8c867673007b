// GGUF block formats decoded on the GPU against the CPU twin, bit for bit, to f32 and to bf16, on random
// blocks (scales kept finite) of an odd number of blocks.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/dequant.h"
#include "kernels/cuda/dequant.h"
#include "tests/support/gpu_test_support.h"

namespace tessera::kernels::cuda {
namespace {

using cpu::QuantFormat;
using testing_support::DeviceBuffer;
using testing_support::nv;

// Byte offsets of the f16 scale fields inside one block (random bytes there could be NaN or inf).
std::vector<int> scale_offsets(QuantFormat format) {
  switch (format) {
    case QuantFormat::kQ4_0: case QuantFormat::kQ5_0: case QuantFormat::kQ8_0: return {0};
    case QuantFormat::kQ4_1: case QuantFormat::kQ5_1: case QuantFormat::kQ4_K: case QuantFormat::kQ5_K: return {0, 2};
    case QuantFormat::kQ6_K: return {208};
    default: return {};
  }
}

std::vector<std::byte> random_blocks(QuantFormat format, int64_t count, uint32_t seed) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  const int64_t bytes = cpu::quantized_bytes(format, count);
  std::vector<std::byte> data(static_cast<size_t>(bytes));
  for (auto& b : data) b = static_cast<std::byte>(engine() & 0xFF);
  const auto put16 = [&](size_t at, uint16_t bits) { std::memcpy(data.data() + at, &bits, 2); };
  if (format == QuantFormat::kF32) {
    for (int64_t i = 0; i < count; ++i) {
      const float v = value(engine);
      std::memcpy(data.data() + 4 * i, &v, 4);
    }
  } else if (format == QuantFormat::kF16 || format == QuantFormat::kBF16) {
    for (int64_t i = 0; i < count; ++i) {
      const float v = value(engine) * (i % 5 == 0 ? 1e-6f : 1.0f);  // subnormal f16 values too
      put16(static_cast<size_t>(2 * i),
            format == QuantFormat::kF16 ? float_to_fp16(v).bits : float_to_bf16(v).bits);
    }
  } else {
    const cpu::QuantLayout layout = cpu::quant_layout(format);
    for (int64_t block = 0; block < count / layout.block_elements; ++block) {
      for (int offset : scale_offsets(format)) {
        put16(static_cast<size_t>(block * layout.block_bytes + offset), float_to_fp16(value(engine) * 0.05f).bits);
      }
    }
  }
  return data;
}

class CudaDequant : public ::testing::TestWithParam<QuantFormat> {};

TEST_P(CudaDequant, MatchesCpuBitForBit) {
  TESSERA_REQUIRE_GPUS(1);
  const QuantFormat format = GetParam();
  ASSERT_TRUE(dequantize_supported(format));
  const int64_t count = cpu::quant_layout(format).block_elements * 7;  // an odd number of blocks
  const std::vector<std::byte> src = random_blocks(format, count, 1234 + static_cast<uint32_t>(format));
  std::vector<float> expected(static_cast<size_t>(count));
  cpu::dequantize(format, src, count, expected.data());
  std::vector<bf16> expected16(static_cast<size_t>(count));
  cpu::dequantize_to_bf16(format, src, count, expected16.data());

  std::vector<uint8_t> raw(src.size());
  std::memcpy(raw.data(), src.data(), src.size());
  DeviceBuffer<uint8_t> dsrc(raw);
  DeviceBuffer<float> out(static_cast<size_t>(count));
  DeviceBuffer<bf16> out16(static_cast<size_t>(count));
  dequantize(format, dsrc.get(), raw.size(), count, out.get(), nullptr);
  dequantize(format, dsrc.get(), raw.size(), count, nv(out16.get()), nullptr);
  const auto got = out.download();
  const auto got16 = out16.download();
  for (int64_t i = 0; i < count; ++i) {
    uint32_t a = 0, b = 0;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &expected[i], 4);
    ASSERT_EQ(a, b) << cpu::quant_format_name(format) << " element " << i << ": " << got[i] << " vs " << expected[i];
    ASSERT_EQ(got16[i].bits, expected16[i].bits) << cpu::quant_format_name(format) << " element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, CudaDequant,
                         ::testing::Values(QuantFormat::kF32, QuantFormat::kF16, QuantFormat::kBF16, QuantFormat::kQ4_0,
                                           QuantFormat::kQ4_1, QuantFormat::kQ5_0, QuantFormat::kQ5_1,
                                           QuantFormat::kQ8_0, QuantFormat::kQ4_K, QuantFormat::kQ5_K,
                                           QuantFormat::kQ6_K),
                         [](const auto& test_info) { return std::string(cpu::quant_format_name(test_info.param)); });

TEST(CudaDequantChecks, RejectsShortInputAndPartialBlocks) {
  TESSERA_REQUIRE_GPUS(1);
  DeviceBuffer<uint8_t> src(100);
  DeviceBuffer<float> out(64);
  EXPECT_THROW(dequantize(QuantFormat::kQ4_0, src.get(), 100, 64 * 3, out.get(), nullptr), Error);  // needs 108 bytes
  EXPECT_THROW(dequantize(QuantFormat::kQ4_0, src.get(), 100, 33, out.get(), nullptr), Error);      // partial block
  EXPECT_FALSE(dequantize_supported(QuantFormat::kQ2_K));
}

}  // namespace
}  // namespace tessera::kernels::cuda
