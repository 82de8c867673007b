// PackedMatrix's native format (weights kept in ggml blocks) against products computed in double from
// dequantize()'s values of the very same bytes, on random blocks of every format, odd row counts, the GEMV path
// (few rows of x) and the tiled BLAS path, under each instruction set this CPU has. The vector decoders must also
// reproduce dequantize() bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/base/half.h"
#include "kernels/cpu/block_gemv.h"
#include "kernels/cpu/dequant.h"
#include "kernels/cpu/packed_dot.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/cpu/parallel_for.h"

namespace tessera::kernels::cpu {
namespace {

// Byte offsets of a block's fp16 scale fields: random bytes there could be Inf/NaN, so they get sane values.
struct ScaleFields {
  std::vector<int> offsets;
};

ScaleFields scale_fields(QuantFormat format) {
  switch (format) {
    case QuantFormat::kQ4_0:
    case QuantFormat::kQ5_0:
    case QuantFormat::kQ8_0: return {{0}};
    case QuantFormat::kQ4_1:
    case QuantFormat::kQ5_1:
    case QuantFormat::kQ4_K:
    case QuantFormat::kQ5_K: return {{0, 2}};
    case QuantFormat::kQ2_K: return {{80, 82}};
    case QuantFormat::kQ3_K: return {{108}};
    case QuantFormat::kQ6_K: return {{208}};
    default: return {{}};
  }
}

QuantizedRows random_rows(QuantFormat format, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
  QuantizedRows q;
  q.format = format;
  q.rows = rows;
  q.cols = cols;
  q.bytes.resize(static_cast<size_t>(rows * q.row_bytes()));
  for (std::byte& b : q.bytes) b = static_cast<std::byte>(byte(rng));
  if (format == QuantFormat::kF16) {  // random bits could be Inf or NaN
    for (size_t i = 0; i + 1 < q.bytes.size(); i += 2) {
      const uint16_t bits = float_to_fp16(scale(rng)).bits;
      std::memcpy(q.bytes.data() + i, &bits, sizeof bits);
    }
  }
  const QuantLayout layout = quant_layout(format);
  for (size_t block = 0; block < q.bytes.size() / static_cast<size_t>(layout.block_bytes); ++block) {
    for (const int offset : scale_fields(format).offsets) {
      const uint16_t bits = float_to_fp16(scale(rng)).bits;
      std::memcpy(q.bytes.data() + block * static_cast<size_t>(layout.block_bytes) + offset, &bits, sizeof bits);
    }
  }
  return q;
}

std::vector<float> dequantized(const QuantizedRows& q) {
  std::vector<float> values(static_cast<size_t>(q.rows * q.cols));
  dequantize(q.format, q.bytes, q.rows * q.cols, values.data());
  return values;
}

std::vector<float> random_values(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = normal(rng);
  return v;
}

// y = x · wᵀ + bias in double from the dequantized weights (the reference the loader's f32 matrices hold).
void expect_matches(const PackedMatrix& w, const std::vector<float>& reference_w, int64_t m, bool with_bias,
                    uint32_t seed) {
  const int64_t rows = w.rows(), cols = w.cols();
  const std::vector<float> x = random_values(m * cols, seed);
  const std::vector<float> bias = random_values(rows, seed + 1);
  const float* b = with_bias ? bias.data() : nullptr;
  std::vector<float> y(static_cast<size_t>(m * rows), std::nanf(""));  // garbage must be overwritten
  w.matmul_transposed(x.data(), y.data(), m, b);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double sum = b ? static_cast<double>(b[r]) : 0.0, magnitude = 0.0;
      for (int64_t c = 0; c < cols; ++c) {
        const double term = static_cast<double>(x[i * cols + c]) * static_cast<double>(reference_w[r * cols + c]);
        sum += term;
        magnitude += std::fabs(term);
      }
      // Only the f32 summation order differs from the reference: f32 rounding of the running sums, which grows
      // like sqrt(cols) ulps of the terms' total magnitude.
      const double tolerance = 2.5e-7 * std::sqrt(static_cast<double>(cols)) * magnitude + 1e-6;
      ASSERT_NEAR(y[i * rows + r], sum, tolerance) << "m=" << m << " row " << r << " of " << rows;
    }
  }
}

template <class Body>
void for_each_supported_isa(const Body& body) {
  const PackedIsa previous = set_packed_isa_limit(PackedIsa::kAvx512);
  const PackedIsa best = packed_isa();
  for (const PackedIsa isa : {PackedIsa::kScalar, PackedIsa::kAvx2, PackedIsa::kAvx512}) {
    if (isa > best) break;
    set_packed_isa_limit(isa);
    SCOPED_TRACE(std::string(packed_isa_name(isa)));
    body();
  }
  set_packed_isa_limit(previous);
}

const QuantFormat kVectorFormats[] = {QuantFormat::kQ4_0, QuantFormat::kQ4_1, QuantFormat::kQ8_0, QuantFormat::kQ4_K,
                                      QuantFormat::kQ6_K};
// Formats served by the portable kernel only.
const QuantFormat kPortableFormats[] = {QuantFormat::kQ5_0, QuantFormat::kQ5_1, QuantFormat::kQ2_K,
                                        QuantFormat::kQ3_K, QuantFormat::kQ5_K, QuantFormat::kF16};

TEST(BlockGemv, VectorDecodersAreBitExact) {
  for (const QuantFormat format : kVectorFormats) {
    SCOPED_TRACE(std::string(quant_format_name(format)));
    EXPECT_TRUE(packed::block_simd_supported(format));
    const int64_t count = quant_layout(format).block_elements * 7;
    const QuantizedRows q = random_rows(format, 1, count, 5);
    const std::vector<float> want = dequantized(q);
    std::vector<float> got(static_cast<size_t>(count));
    if (packed::cpu_has_avx2_fma() && packed::cpu_has_f16c()) {
      packed::block_decode_avx2(format, q.bytes.data(), count, got.data());
      for (int64_t i = 0; i < count; ++i) ASSERT_EQ(got[i], want[i]) << "avx2, element " << i;
    }
    if (packed::cpu_has_avx512() && packed::cpu_has_f16c()) {
      packed::block_decode_avx512(format, q.bytes.data(), count, got.data());
      for (int64_t i = 0; i < count; ++i) ASSERT_EQ(got[i], want[i]) << "avx512, element " << i;
    }
  }
  for (const QuantFormat format : kPortableFormats) EXPECT_FALSE(packed::block_simd_supported(format));
}

TEST(BlockGemv, UnpackedRowsAreTheDequantizedValues) {
  for_each_supported_isa([] {
    for (const QuantFormat format : kVectorFormats) {
      const int64_t cols = quant_layout(format).block_elements * 3;
      const QuantizedRows q = random_rows(format, 5, cols, 6);
      const std::vector<float> want = dequantized(q);
      std::vector<QuantizedRows> parts;
      parts.push_back(q);
      const PackedMatrix w(std::move(parts));
      EXPECT_EQ(w.format(), WeightFormat::kNative);
      EXPECT_EQ(w.bytes(), q.bytes.size());
      EXPECT_EQ(w.native_format(4), format);
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = 0; r < 5; ++r) {
        w.unpack_row(r, row.data());
        for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(row[c], want[r * cols + c]) << quant_format_name(format);
      }
    }
  });
}

TEST(BlockGemv, ProductsMatchTheDequantizedReferenceOnEveryPath) {
  set_kernel_threads(3);  // the GEMV splits rows across threads
  for_each_supported_isa([] {
    for (const QuantFormat format : kVectorFormats) {
      SCOPED_TRACE(std::string(quant_format_name(format)));
      const int64_t block = quant_layout(format).block_elements;
      // Odd row counts (the 4- and 2-row tiles leave tails), one block per row, model-like widths, and rows of
      // more than one run of converted scales (65 blocks of 32: two runs of 32 and one block).
      for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
               {1, block}, {7, 2 * block}, {37, 3 * block}, {129, block == 32 ? 576 : 1536}, {6, 65 * block}}) {
        const QuantizedRows q = random_rows(format, rows, cols, static_cast<uint32_t>(rows + cols));
        const std::vector<float> reference = dequantized(q);
        std::vector<QuantizedRows> parts;
        parts.push_back(q);
        const PackedMatrix w(std::move(parts));
        for (const int64_t m : {1, 2, 3, 4, 5, 8, 9, 40}) {
          expect_matches(w, reference, m, /*with_bias=*/m % 2 == 1, static_cast<uint32_t>(rows * m));
        }
      }
    }
  });
  set_kernel_threads(1);
}

TEST(BlockGemv, PortableFormatsAndMixedPartsWork) {
  set_kernel_threads(2);
  for_each_supported_isa([] {
    for (const QuantFormat format : kPortableFormats) {
      SCOPED_TRACE(std::string(quant_format_name(format)));
      const QuantizedRows q = random_rows(format, 11, 512, 8);
      std::vector<QuantizedRows> parts;
      parts.push_back(q);
      const PackedMatrix w(std::move(parts));
      for (const int64_t m : {1, 3, 12}) expect_matches(w, dequantized(q), m, m == 3, 9);
    }
    // A fused matrix whose parts differ in format (as Q4_K_M files store attn_v in Q6_K), with an empty part.
    std::vector<QuantizedRows> parts = {random_rows(QuantFormat::kQ4_K, 13, 512, 1),
                                        random_rows(QuantFormat::kQ6_K, 0, 512, 2),
                                        random_rows(QuantFormat::kQ6_K, 6, 512, 3),
                                        random_rows(QuantFormat::kQ8_0, 5, 512, 4)};
    std::vector<float> reference;
    for (const QuantizedRows& part : parts) {
      const std::vector<float> values = dequantized(part);
      reference.insert(reference.end(), values.begin(), values.end());
    }
    const PackedMatrix w(parts);
    EXPECT_EQ(w.rows(), 24);
    EXPECT_EQ(w.native_format(12), QuantFormat::kQ4_K);
    EXPECT_EQ(w.native_format(13), QuantFormat::kQ6_K);
    EXPECT_EQ(w.native_format(23), QuantFormat::kQ8_0);
    for (const int64_t m : {1, 2, 7, 8, 20}) expect_matches(w, reference, m, m == 7, 10);
  });
  set_kernel_threads(1);
}

TEST(BlockGemv, RejectsInconsistentParts) {
  EXPECT_EQ(parse_weight_format("native"), WeightFormat::kNative);
  EXPECT_THROW(PackedMatrix(std::vector<float>(64), 2, 32, WeightFormat::kNative), Error);  // needs blocks
  EXPECT_THROW(PackedMatrix(std::vector<QuantizedRows>{}), Error);
  QuantizedRows short_part = random_rows(QuantFormat::kQ4_1, 3, 64, 1);
  short_part.bytes.pop_back();
  EXPECT_THROW(PackedMatrix(std::vector<QuantizedRows>{short_part}), Error);
  QuantizedRows partial_block = random_rows(QuantFormat::kQ8_0, 1, 64, 2);
  partial_block.cols = 40;  // not whole blocks of 32
  EXPECT_THROW(PackedMatrix(std::vector<QuantizedRows>{partial_block}), Error);
  EXPECT_THROW(PackedMatrix(std::vector<QuantizedRows>{random_rows(QuantFormat::kQ4_0, 2, 64, 3),
                                                       random_rows(QuantFormat::kQ4_0, 2, 96, 4)}),
               Error);
}

}  // namespace
}  // namespace tessera::kernels::cpu
