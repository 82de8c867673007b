#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/dequant.h"
#include "tests/support/test_paths.h"

namespace tessera::kernels::cpu {
namespace {

std::filesystem::path fixture_dir() { return testing::fixture("gguf/dequant"); }

std::vector<std::byte> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read fixture " + path.string() + " (is TESSERA_SOURCE_DIR set?)");
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

const QuantFormat kAllFormats[] = {
    QuantFormat::kF32,  QuantFormat::kF16,  QuantFormat::kBF16, QuantFormat::kQ4_0, QuantFormat::kQ4_1,
    QuantFormat::kQ5_0, QuantFormat::kQ5_1, QuantFormat::kQ8_0, QuantFormat::kQ2_K, QuantFormat::kQ3_K,
    QuantFormat::kQ4_K, QuantFormat::kQ5_K, QuantFormat::kQ6_K,
};

class DequantGolden : public ::testing::TestWithParam<QuantFormat> {};

// gguf-py's numpy decoding (scripts/golden/gguf_dequant.py) and ours agree bit for bit, for every format:
// same f32 operations in the same order, so no tolerance is needed.
TEST_P(DequantGolden, MatchesGgufPyBitForBit) {
  const QuantFormat format = GetParam();
  const std::string name(quant_format_name(format));
  const auto blocks = read_file(fixture_dir() / (name + ".blocks"));
  const auto expected_bytes = read_file(fixture_dir() / (name + ".f32"));
  const int64_t count = static_cast<int64_t>(expected_bytes.size() / 4);
  ASSERT_GT(count, 0);
  ASSERT_EQ(quantized_bytes(format, count), static_cast<int64_t>(blocks.size()));
  std::vector<uint32_t> expected(static_cast<size_t>(count));
  std::memcpy(expected.data(), expected_bytes.data(), expected_bytes.size());

  // Decode from a misaligned copy too: the kernels must not assume aligned input.
  for (size_t shift : {0u, 1u}) {
    std::vector<std::byte> source(blocks.size() + shift);
    std::memcpy(source.data() + shift, blocks.data(), blocks.size());
    std::vector<float> out(static_cast<size_t>(count), -12345.0f);
    dequantize(format, std::span<const std::byte>(source).subspan(shift), count, out.data());
    int mismatches = 0;
    for (int64_t i = 0; i < count; ++i) {
      const uint32_t got = std::bit_cast<uint32_t>(out[i]);
      if (got != expected[i] && ++mismatches <= 5) {
        ADD_FAILURE() << name << " element " << i << ": got " << out[i] << " (0x" << std::hex << got
                      << "), gguf-py " << std::bit_cast<float>(expected[i]) << " (0x" << expected[i] << ")"
                      << std::dec;
      }
    }
    EXPECT_EQ(mismatches, 0) << name;
  }

  // The bf16 variant is the f32 result rounded to nearest even.
  std::vector<bf16> rounded(static_cast<size_t>(count));
  dequantize_to_bf16(format, blocks, count, rounded.data());
  for (int64_t i = 0; i < count; ++i) {
    ASSERT_EQ(rounded[i].bits, float_to_bf16(std::bit_cast<float>(expected[i])).bits) << name << " element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, DequantGolden, ::testing::ValuesIn(kAllFormats),
                         [](const auto& param_info) { return std::string(quant_format_name(param_info.param)); });

TEST(Dequant, LayoutsMatchGgml) {
  EXPECT_EQ(quant_layout(QuantFormat::kQ4_1).block_bytes, 20);
  EXPECT_EQ(quant_layout(QuantFormat::kQ6_K).block_elements, 256);
  EXPECT_EQ(quantized_bytes(QuantFormat::kQ8_0, 64), 68);
  EXPECT_EQ(quantized_bytes(QuantFormat::kQ4_K, 512), 288);
  EXPECT_EQ(quantized_bytes(QuantFormat::kBF16, 3), 6);
  EXPECT_EQ(quantized_bytes(QuantFormat::kQ4_0, 0), 0);
}

TEST(Dequant, RejectsPartialBlocksAndShortInput) {
  std::vector<std::byte> bytes(210);
  std::vector<float> out(512);
  EXPECT_THROW(dequantize(QuantFormat::kQ4_0, bytes, 33, out.data()), Error);
  EXPECT_THROW(dequantize(QuantFormat::kQ4_0, bytes, -32, out.data()), Error);
  EXPECT_THROW(dequantize(QuantFormat::kQ6_K, bytes, 512, out.data()), Error);  // needs 420 bytes
  EXPECT_NO_THROW(dequantize(QuantFormat::kQ6_K, bytes, 256, out.data()));
  std::vector<bf16> out16(512);
  EXPECT_THROW(dequantize_to_bf16(QuantFormat::kQ6_K, bytes, 512, out16.data()), Error);
  EXPECT_THROW(dequantize_to_bf16(QuantFormat::kQ2_K, bytes, 100, out16.data()), Error);
}

// A hand-computed Q4_1 block: value = d * q + m with d = 0.5, m = -1.
TEST(Dequant, Q4_1ByHand) {
  std::vector<std::byte> block(20);
  const uint16_t d = float_to_fp16(0.5f).bits, m = float_to_fp16(-1.0f).bits;
  std::memcpy(block.data(), &d, 2);
  std::memcpy(block.data() + 2, &m, 2);
  for (int j = 0; j < 16; ++j) block[4 + j] = static_cast<std::byte>(j | ((15 - j) << 4));
  std::vector<float> out(32);
  dequantize(QuantFormat::kQ4_1, block, 32, out.data());
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * static_cast<float>(j) - 1.0f);
    EXPECT_EQ(out[j + 16], 0.5f * static_cast<float>(15 - j) - 1.0f);
  }
}

}  // namespace
}  // namespace tessera::kernels::cpu
