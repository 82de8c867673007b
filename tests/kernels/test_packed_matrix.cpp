// PackedMatrix (bf16 and q8_0 weights) against products computed in double from the very values the packed
// format holds, on both the GEMV path (few rows) and the tiled BLAS path, with SIMD on and off.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/base/half.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/cpu/parallel_for.h"

namespace tessera::kernels::cpu {
namespace {

std::vector<float> random_values(int64_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = normal(rng);
  return v;
}

// y = x · wᵀ + bias in double, w given row by row by the matrix itself (the values it really multiplies with).
std::vector<double> reference(const PackedMatrix& w, const std::vector<float>& x, int64_t m, const float* bias) {
  std::vector<float> row(static_cast<size_t>(w.cols()));
  std::vector<double> y(static_cast<size_t>(m * w.rows()));
  for (int64_t r = 0; r < w.rows(); ++r) {
    w.unpack_row(r, row.data());
    for (int64_t i = 0; i < m; ++i) {
      double sum = bias ? static_cast<double>(bias[r]) : 0.0;
      for (int64_t c = 0; c < w.cols(); ++c) {
        sum += static_cast<double>(x[i * w.cols() + c]) * static_cast<double>(row[c]);
      }
      y[i * w.rows() + r] = sum;
    }
  }
  return y;
}

void expect_matches(const PackedMatrix& w, int64_t m, bool with_bias, uint32_t seed) {
  const std::vector<float> x = random_values(m * w.cols(), seed);
  const std::vector<float> bias = random_values(w.rows(), seed + 1);
  const float* b = with_bias ? bias.data() : nullptr;
  std::vector<float> y(static_cast<size_t>(m * w.rows()), std::nanf(""));  // garbage must be overwritten
  w.matmul_transposed(x.data(), y.data(), m, b);
  const std::vector<double> want = reference(w, x, m, b);
  // f32 accumulation over cols terms of unit-variance products: error ~ sqrt(cols) * 2^-24 * |terms|.
  const double tolerance = 1e-5 * std::sqrt(static_cast<double>(w.cols())) * 4.0;
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_NEAR(y[i], want[i], tolerance) << weight_format_name(w.format()) << " m=" << m << " index " << i;
  }
}

// Runs the body under each instruction set this CPU has, restoring the limit afterwards.
template <class Body>
void for_each_supported_isa(const Body& body) {
  const PackedIsa previous = set_packed_isa_limit(PackedIsa::kAvx512);
  const PackedIsa best = packed_isa();
  for (const PackedIsa isa : {PackedIsa::kScalar, PackedIsa::kAvx2, PackedIsa::kAvx512}) {
    if (isa > best) break;
    set_packed_isa_limit(isa);
    ASSERT_EQ(packed_isa(), isa);
    SCOPED_TRACE(std::string(packed_isa_name(isa)));
    body();
  }
  set_packed_isa_limit(previous);
}

TEST(PackedMatrix, ParsesAndNamesFormats) {
  EXPECT_EQ(parse_weight_format("f32"), WeightFormat::kF32);
  EXPECT_EQ(parse_weight_format("bf16"), WeightFormat::kBF16);
  EXPECT_EQ(parse_weight_format("q8_0"), WeightFormat::kQ8_0);
  EXPECT_THROW(parse_weight_format("q4"), Error);
  EXPECT_EQ(weight_format_name(WeightFormat::kQ8_0), "q8_0");
}

TEST(PackedMatrix, Bf16HoldsRoundedValues) {
  const std::vector<float> w = random_values(7 * 40, 3);
  const PackedMatrix packed(w, 7, 40, WeightFormat::kBF16);
  EXPECT_EQ(packed.bytes(), 7u * 40u * 2u);
  std::vector<float> row(40);
  for (int64_t r = 0; r < 7; ++r) {
    packed.unpack_row(r, row.data());
    for (int64_t c = 0; c < 40; ++c) EXPECT_EQ(row[c], bf16_to_float(float_to_bf16(w[r * 40 + c])));
  }
}

TEST(PackedMatrix, Q8ErrorIsAtMostHalfAStep) {
  std::vector<float> w = random_values(5 * 64, 4);
  for (int i = 0; i < 32; ++i) w[i] = 0.0f;  // an all-zero block must give zeros, not NaN
  const PackedMatrix packed(w, 5, 64, WeightFormat::kQ8_0);
  EXPECT_EQ(packed.bytes(), 5u * 64u + 5u * 2u * 4u);
  std::vector<float> row(64);
  for (int64_t r = 0; r < 5; ++r) {
    packed.unpack_row(r, row.data());
    for (int64_t b = 0; b < 2; ++b) {
      float amax = 0.0f;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(w[r * 64 + b * 32 + i]));
      for (int i = 0; i < 32; ++i) {
        const int64_t c = b * 32 + i;
        EXPECT_LE(std::fabs(row[c] - w[r * 64 + c]), amax / 127.0f * 0.5f + 1e-7f) << "row " << r << " col " << c;
      }
    }
  }
  packed.unpack_row(0, row.data());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(row[i], 0.0f);
}

TEST(PackedMatrix, Q8RejectsRowsThatAreNotWholeBlocks) {
  EXPECT_THROW(PackedMatrix(std::vector<float>(3 * 40), 3, 40, WeightFormat::kQ8_0), Error);
  EXPECT_THROW(PackedMatrix(std::vector<float>(10), 3, 4, WeightFormat::kBF16), Error);
}

TEST(PackedMatrix, ProductsMatchReferenceOnEveryPath) {
  set_kernel_threads(3);  // the GEMV splits rows across threads, the tiles widen in parallel
  // (rows, cols): odd row counts, a row length that is not a multiple of 8 (bf16 tail), model-like shapes.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 32}, {37, 96}, {300, 576}, {129, 1536}};
  for_each_supported_isa([&] {
    for (const WeightFormat format : {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kQ8_0}) {
      for (const auto& [rows, cols] : shapes) {
        const PackedMatrix w(random_values(rows * cols, 11, 0.05f), rows, cols, format);
        for (const int64_t m : {1, 3, 8, 9, 40}) {
          expect_matches(w, m, /*with_bias=*/m % 2 == 1, static_cast<uint32_t>(rows + m));
        }
      }
    }
    // bf16 rows of 45 and 21 values: every tail length of the vector loops.
    for (const int64_t cols : {45, 21, 8}) {
      const PackedMatrix odd(random_values(5 * cols, 12), 5, cols, WeightFormat::kBF16);
      expect_matches(odd, 1, true, 1);
      expect_matches(odd, 12, false, 2);
    }
    // q8 rows of one and three blocks: the odd-block tail of the two-block loop.
    for (const int64_t cols : {32, 96}) {
      const PackedMatrix q8(random_values(9 * cols, 14), 9, cols, WeightFormat::kQ8_0);
      expect_matches(q8, 2, true, 3);
    }
  });
  set_kernel_threads(1);
}

TEST(PackedMatrix, ReportsTheInstructionSet) {
  const PackedIsa previous = set_packed_isa_limit(PackedIsa::kScalar);
  EXPECT_EQ(packed_isa(), PackedIsa::kScalar);
  set_packed_isa_limit(previous);
  EXPECT_EQ(packed_isa_name(PackedIsa::kAvx2), "avx2");
}

// TESSERA_CPU_ISA's values: unset runs the best the CPU has; a name forces that path; an unknown name, or an ISA this
// CPU lacks, is an error that says so (never an illegal instruction later).
TEST(PackedMatrix, TesseraCpuIsaForcesAPathOrSaysWhyNot) {
  const PackedIsa best = best_packed_isa();
  EXPECT_EQ(forced_packed_isa(nullptr), best);
  EXPECT_EQ(forced_packed_isa(""), best);
  EXPECT_EQ(forced_packed_isa("scalar"), PackedIsa::kScalar);
  for (const PackedIsa isa : {PackedIsa::kAvx2, PackedIsa::kAvx512}) {
    const std::string name(packed_isa_name(isa));
    if (isa <= best) {
      EXPECT_EQ(forced_packed_isa(name.c_str()), isa);
    } else {
      try {
        forced_packed_isa(name.c_str());
        ADD_FAILURE() << "forcing " << name << " on a CPU whose best is " << packed_isa_name(best) << " was accepted";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot run " + name), std::string::npos) << e.what();
      }
    }
  }
  try {
    forced_packed_isa("avx3");
    ADD_FAILURE() << "an unknown instruction set was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'avx3' (expected scalar, avx2 or avx512)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_packed_isa("avx512"), PackedIsa::kAvx512);
}

TEST(PackedMatrix, EmptyShapes) {
  const PackedMatrix w(std::vector<float>{}, 0, 64, WeightFormat::kQ8_0);
  std::vector<float> x(64, 1.0f);
  w.matmul_transposed(x.data(), nullptr, 1);  // nothing to write
  const PackedMatrix no_cols(std::vector<float>{}, 3, 0, WeightFormat::kBF16);
  std::vector<float> y(3, 5.0f);
  const float bias[3] = {1.0f, 2.0f, 3.0f};
  no_cols.matmul_transposed(x.data(), y.data(), 1, bias);
  EXPECT_EQ(y, (std::vector<float>{1.0f, 2.0f, 3.0f}));
}

}  // namespace
}  // namespace tessera::kernels::cpu
