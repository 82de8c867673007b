// The int8-activation products (block_gemv_int8.h, TESSERA_CPU_ACTIVATIONS=int8) against products in double of the
// f32 x with dequantize()'s weights: within the bound the activation rounding allows (|x - d q| <= d / 2 per element,
// d = the block's max|x| / 127), plus f32 rounding; and the measured error, as docs/PERFORMANCE.md states it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/base/half.h"
#include "kernels/cpu/block_gemv.h"
#include "kernels/cpu/block_gemv_int8.h"
#include "kernels/cpu/dequant.h"
#include "kernels/cpu/packed_dot.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/cpu/parallel_for.h"
#include "tests/kernels/batch_invariance.h"

namespace tessera::kernels::cpu {
namespace {

TEST(BlockGemvInt8, ActivationFormatParsesAndRejects) {
  EXPECT_EQ(parse_activation_format(nullptr), ActivationFormat::kF32);
  EXPECT_EQ(parse_activation_format(""), ActivationFormat::kF32);
  EXPECT_EQ(parse_activation_format("f32"), ActivationFormat::kF32);
  EXPECT_EQ(parse_activation_format("int8"), ActivationFormat::kInt8);
  EXPECT_EQ(activation_format_name(ActivationFormat::kInt8), "int8");
  try {
    parse_activation_format("int4");
    ADD_FAILURE() << "int4 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'int4' (expected f32 or int8)"), std::string::npos) << e.what();
  }
}

TEST(BlockGemvInt8, WithinTheActivationRoundingBound) {
  if (best_packed_isa() < PackedIsa::kAvx2 || !packed::cpu_has_f16c()) GTEST_SKIP() << "needs AVX2 and F16C";
  const ActivationFormat previous = set_activation_format(ActivationFormat::kInt8);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const QuantFormat format : {QuantFormat::kQ4_0, QuantFormat::kQ4_1, QuantFormat::kQ8_0}) {
    SCOPED_TRACE(std::string(quant_format_name(format)));
    EXPECT_TRUE(packed::block_int8_supported(format));
    const int64_t rows = 37, cols = 576, m = 5;
    std::vector<QuantizedRows> parts;
    parts.push_back(batch_invariance::random_rows(format, rows, cols, 9));
    std::vector<float> w(static_cast<size_t>(rows * cols));
    dequantize(format, parts[0].bytes, rows * cols, w.data());
    const PackedMatrix matrix(std::move(parts));
    std::vector<float> x(static_cast<size_t>(m * cols)), y(static_cast<size_t>(m * rows));
    for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (i % 11 == 0 ? 6.0f : 1.0f);  // outliers, as in models
    matrix.matmul_transposed(x.data(), y.data(), m);
    double worst_relative = 0, sum_sq_error = 0, sum_sq_value = 0;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t r = 0; r < rows; ++r) {
        double exact = 0, bound = 0, magnitude = 0;
        for (int64_t b = 0; b < cols / 32; ++b) {
          double amax = 0;
          for (int c = 0; c < 32; ++c) amax = std::max(amax, std::fabs(double{x[i * cols + b * 32 + c]}));
          const double d = amax / 127;
          for (int c = 0; c < 32; ++c) {
            const double wv = w[r * cols + b * 32 + c], xv = x[i * cols + b * 32 + c];
            exact += wv * xv;
            bound += std::fabs(wv) * d / 2;
            magnitude += std::fabs(wv * xv);
          }
        }
        const double error = std::fabs(static_cast<double>(y[i * rows + r]) - exact);
        ASSERT_LE(error, bound + 1e-5 * magnitude + 1e-6) << "x row " << i << ", output " << r;
        worst_relative = std::max(worst_relative, error / magnitude);
        sum_sq_error += error * error;
        sum_sq_value += exact * exact;
      }
    }
    std::printf("%s: int8 activations, error / sum|w x| <= %.2e, rms error / rms value %.2e\n",
                std::string(quant_format_name(format)).c_str(), worst_relative,
                std::sqrt(sum_sq_error / sum_sq_value));
  }
  set_activation_format(previous);
}

// What the kernels compute, in double: x quantized per block exactly as they do (d = max|x| / 127 in f32,
// q = x * (1 / d) rounded to nearest even), the weights as their integer quants and fp16 fields, and
//   y = sum_b dw dx sum qw qx + mw dx sum qx       (Q4_0: qw - 8 as the quant, no mw; Q8_0: signed quants, no mw)
// Only f32 rounding of the block products may separate the kernels from it. This pins the arithmetic down much
// tighter than the rounding bound above (a lost bias term or a block paired with the wrong scale is far outside it).
TEST(BlockGemvInt8, MatchesTheQuantizedProductInDouble) {
  if (best_packed_isa() < PackedIsa::kAvx2 || !packed::cpu_has_f16c()) GTEST_SKIP() << "needs AVX2 and F16C";
  const ActivationFormat previous = set_activation_format(ActivationFormat::kInt8);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const QuantFormat format : {QuantFormat::kQ4_0, QuantFormat::kQ4_1, QuantFormat::kQ8_0}) {
    for (const int64_t cols : {int64_t{576}, int64_t{1536}, int64_t{96}}) {  // 18, 48 and 3 blocks: partial runs
      SCOPED_TRACE(std::string(quant_format_name(format)) + " k=" + std::to_string(cols));
      const int64_t rows = 13, m = 6, blocks = cols / 32;
      std::vector<QuantizedRows> parts;
      parts.push_back(batch_invariance::random_rows(format, rows, cols, 17));
      const std::vector<std::byte> bytes = parts[0].bytes;
      const int64_t row_bytes = parts[0].row_bytes(), block_bytes = row_bytes / blocks;
      const PackedMatrix matrix(std::move(parts));
      std::vector<float> x(static_cast<size_t>(m * cols)), y(static_cast<size_t>(m * rows));
      for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (i % 7 == 0 ? 5.0f : 1.0f);
      matrix.matmul_transposed(x.data(), y.data(), m);
      auto f16 = [&](const std::byte* p) {
        uint16_t bits;
        std::memcpy(&bits, p, 2);
        return double{fp16_to_float(fp16{bits})};
      };
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t r = 0; r < rows; ++r) {
          double want = 0, magnitude = 0;
          for (int64_t b = 0; b < blocks; ++b) {
            const float* xb = x.data() + i * cols + b * 32;
            float amax = 0;
            for (int c = 0; c < 32; ++c) amax = std::max(amax, std::fabs(xb[c]));
            const float dxf = amax / 127.0f;
            const float inverse = dxf > 0.0f ? 1.0f / dxf : 0.0f;
            const double dx = dxf;
            const std::byte* block = bytes.data() + r * row_bytes + b * block_bytes;
            const double dw = f16(block);
            const double mw = format == QuantFormat::kQ4_1 ? f16(block + 2) : 0.0;
            int64_t dot = 0, sum_x = 0;
            for (int c = 0; c < 32; ++c) {
              const auto qx = static_cast<int64_t>(std::nearbyint(xb[c] * inverse));
              int64_t qw;
              if (format == QuantFormat::kQ8_0) {
                qw = static_cast<int8_t>(std::to_integer<uint8_t>(block[2 + c]));
              } else {
                const auto byte = std::to_integer<uint8_t>(block[(format == QuantFormat::kQ4_1 ? 4 : 2) + c % 16]);
                qw = (c < 16 ? byte & 0x0F : byte >> 4) - (format == QuantFormat::kQ4_0 ? 8 : 0);
              }
              dot += qw * qx;
              sum_x += qx;
            }
            const double dot_term = dw * dx * static_cast<double>(dot), bias_term = mw * dx * static_cast<double>(sum_x);
            want += dot_term + bias_term;
            magnitude += std::fabs(dot_term) + std::fabs(bias_term);
          }
          ASSERT_NEAR(y[i * rows + r], want, 2e-6 * magnitude + 1e-7) << "x row " << i << ", output " << r;
        }
      }
    }
  }
  set_activation_format(previous);
}

// The int8 path is batch invariant too (the same checks as the f32 kernels').
TEST(BlockGemvInt8, RowsAreBitIdenticalAtBatch1_16_64) {
  if (best_packed_isa() < PackedIsa::kAvx2 || !packed::cpu_has_f16c()) GTEST_SKIP() << "needs AVX2 and F16C";
  const ActivationFormat previous = set_activation_format(ActivationFormat::kInt8);
  batch_invariance::run(PackedIsa::kAvx2);
  set_activation_format(previous);
}

// Where the CPU has AVX-512 VNNI, the avx512 ISA takes the VNNI build: batch invariant in the same way.
TEST(BlockGemvInt8, VnniRowsAreBitIdenticalAtBatch1_16_64) {
  if (!packed::cpu_has_avx512_vnni() || best_packed_isa() < PackedIsa::kAvx512) {
    GTEST_SKIP() << "needs AVX-512 VNNI (this CPU lacks it)";
  }
  const ActivationFormat previous = set_activation_format(ActivationFormat::kInt8);
  batch_invariance::run(PackedIsa::kAvx512);
  set_activation_format(previous);
}

// The VNNI build's one-instruction block dot gives the AVX2 build's integers, so every output is the same float, for
// any batch, shape and format (block_gemv_int8_x86.h). A dot that lost a product, or saturated as vpmaddubsw can,
// would differ here: the weights and activations include the extremes (nibbles 0 and 15, Q8_0's -128, x at +-127 d).
TEST(BlockGemvInt8, VnniBuildGivesTheAvx2BuildsResultsBitForBit) {
  if (!packed::cpu_has_avx512_vnni()) GTEST_SKIP() << "needs AVX-512 VNNI (this CPU lacks it)";
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  uint32_t seed = 40;
  for (const QuantFormat format : {QuantFormat::kQ4_0, QuantFormat::kQ4_1, QuantFormat::kQ8_0}) {
    for (const int64_t cols : {int64_t{576}, int64_t{1536}, int64_t{96}}) {
      for (const int64_t m : {int64_t{1}, int64_t{3}, int64_t{16}, int64_t{64}}) {
        SCOPED_TRACE(std::string(quant_format_name(format)) + " k=" + std::to_string(cols) + " m=" +
                     std::to_string(m));
        const int64_t rows = 21;
        QuantizedRows q = batch_invariance::random_rows(format, rows, cols, seed++);
        if (format == QuantFormat::kQ8_0) {
          q.bytes[2] = std::byte{0x80};  // -128 in the first block of row 0
          q.bytes[3] = std::byte{0x7F};
        } else {
          q.bytes[format == QuantFormat::kQ4_1 ? 4 : 2] = std::byte{0xF0};  // nibbles 0 and 15
        }
        std::vector<float> x(static_cast<size_t>(m * cols));
        for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (i % 13 == 0 ? 8.0f : 1.0f);
        std::vector<float> y_avx2(static_cast<size_t>(m * rows), 0.5f), y_vnni = y_avx2;
        packed::block_gemv_int8_avx2(format, q.bytes.data(), rows, cols, x.data(), m, y_avx2.data(), rows);
        packed::block_gemv_int8_vnni(format, q.bytes.data(), rows, cols, x.data(), m, y_vnni.data(), rows);
        for (size_t i = 0; i < y_avx2.size(); ++i) {
          uint32_t a, b;
          std::memcpy(&a, &y_avx2[i], 4);
          std::memcpy(&b, &y_vnni[i], 4);
          ASSERT_EQ(a, b) << "output " << i << ": " << y_avx2[i] << " (avx2) vs " << y_vnni[i] << " (vnni)";
        }
      }
    }
  }
}

}  // namespace
}  // namespace tessera::kernels::cpu
