#pragma once
// Batch invariance of PackedMatrix's native format (the decode path on the GGUF file's own blocks), under one
// instruction set: a row of x gives bit-identical outputs whether it is multiplied alone, among 16 rows in another
// order, among 64, within 150, or in a batch cut into uneven chunks, and whatever the thread count. Shared by the
// three test_batch_invariance_<isa>.cpp binaries, one per ISA, so that CTest reports an ISA this CPU lacks as Skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/half.h"
#include "kernels/cpu/dequant.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/cpu/parallel_for.h"

namespace tessera::kernels::cpu::batch_invariance {

inline QuantizedRows random_rows(QuantFormat format, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(-0.03f, 0.03f);
  QuantizedRows q;
  q.format = format;
  q.rows = rows;
  q.cols = cols;
  q.bytes.resize(static_cast<size_t>(rows * q.row_bytes()));
  for (std::byte& b : q.bytes) b = static_cast<std::byte>(rng() & 0xFF);
  // Sane fp16 scale fields (random bits could be Inf / NaN): the offsets of each format's fp16 fields.
  std::vector<int> fields;
  switch (format) {
    case QuantFormat::kQ4_0:
    case QuantFormat::kQ8_0: fields = {0}; break;
    case QuantFormat::kQ4_1:
    case QuantFormat::kQ4_K:
    case QuantFormat::kQ5_K: fields = {0, 2}; break;
    case QuantFormat::kQ6_K: fields = {208}; break;
    default: break;
  }
  const int64_t block_bytes = quant_layout(format).block_bytes;
  for (size_t b = 0; b < q.bytes.size() / static_cast<size_t>(block_bytes); ++b) {
    for (const int offset : fields) {
      const uint16_t bits = float_to_fp16(scale(rng)).bits;
      std::memcpy(q.bytes.data() + b * static_cast<size_t>(block_bytes) + offset, &bits, sizeof bits);
    }
  }
  return q;
}

// y = x[rows in `order`] · wᵀ + bias, one call.
inline std::vector<float> product(const PackedMatrix& w, const std::vector<float>& x, const std::vector<int>& order,
                                  const float* bias) {
  const int64_t k = w.cols();
  std::vector<float> xs(order.size() * static_cast<size_t>(k));
  for (size_t i = 0; i < order.size(); ++i) {
    std::memcpy(xs.data() + i * static_cast<size_t>(k), x.data() + static_cast<size_t>(order[i] * k),
                static_cast<size_t>(k) * sizeof(float));
  }
  std::vector<float> y(order.size() * static_cast<size_t>(w.rows()));
  w.matmul_transposed(xs.data(), y.data(), static_cast<int64_t>(order.size()), bias);
  return y;
}

// Row `slot` of y (a product over `order`) must equal, bit for bit, row order[slot] of the reference.
inline void expect_rows_identical(const std::vector<float>& reference, const std::vector<float>& y,
                                  const std::vector<int>& order, int64_t rows, const std::string& what) {
  for (size_t slot = 0; slot < order.size(); ++slot) {
    const float* want = reference.data() + static_cast<size_t>(order[slot] * rows);
    const float* got = y.data() + slot * static_cast<size_t>(rows);
    for (int64_t r = 0; r < rows; ++r) {
      uint32_t a = 0, b = 0;
      std::memcpy(&a, want + r, 4);
      std::memcpy(&b, got + r, 4);
      ASSERT_EQ(a, b) << what << ": x row " << order[slot] << " (slot " << slot << "), output " << r << ": "
                      << want[r] << " in the batch of 64 vs " << got[r];
    }
  }
}

inline void check_matrix(const PackedMatrix& w, uint32_t seed) {
  const int64_t k = w.cols(), rows = w.rows();
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(64 * k)), bias(static_cast<size_t>(rows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (i % 7 == 0 ? 8.0f : 1.0f);  // mixed magnitudes
  for (float& b : bias) b = normal(rng);

  std::vector<int> all(64);
  for (int i = 0; i < 64; ++i) all[static_cast<size_t>(i)] = i;
  set_kernel_threads(3);
  const std::vector<float> batch64 = product(w, x, all, bias.data());

  // Batch 1, each row alone, on one thread.
  set_kernel_threads(1);
  for (int i = 0; i < 64; ++i) {
    const std::vector<int> one = {i};
    expect_rows_identical(batch64, product(w, x, one, bias.data()), one, rows, "batch 1");
    if (::testing::Test::HasFatalFailure()) return;
  }
  // Batch 16 in a scrambled order, on two threads.
  set_kernel_threads(2);
  std::vector<int> sixteen;
  for (int i = 0; i < 16; ++i) sixteen.push_back((i * 37 + 11) % 64);
  expect_rows_identical(batch64, product(w, x, sixteen, bias.data()), sixteen, rows, "batch 16");
  if (::testing::Test::HasFatalFailure()) return;
  // The 64 rows reversed, and cut into uneven chunks (5, 3, 56) as chunked prefill or a scheduler would.
  std::vector<int> reversed(all.rbegin(), all.rend());
  expect_rows_identical(batch64, product(w, x, reversed, bias.data()), reversed, rows, "batch 64 reversed");
  for (const auto& [begin, end] : std::vector<std::pair<int, int>>{{0, 5}, {5, 8}, {8, 64}}) {
    const std::vector<int> chunk(all.begin() + begin, all.begin() + end);
    expect_rows_identical(batch64, product(w, x, chunk, bias.data()), chunk, rows, "chunk");
    if (::testing::Test::HasFatalFailure()) return;
  }
  // 150 rows (the 64, reversed, then the first 22 again), as a prefill chunk: more than two of the buffered paths'
  // row blocks and a partial one, so that rows land in other blocks and at other offsets than in the batch of 64.
  std::vector<int> long_batch(all.begin(), all.end());
  long_batch.insert(long_batch.end(), reversed.begin(), reversed.end());
  long_batch.insert(long_batch.end(), all.begin(), all.begin() + 22);
  expect_rows_identical(batch64, product(w, x, long_batch, bias.data()), long_batch, rows, "batch 150");
  if (::testing::Test::HasFatalFailure()) return;
  set_kernel_threads(1);
}

// Every format with a vector kernel, a portable-only one (Q5_K), odd row counts, a row of an odd number of blocks
// (the 64-column panels' tail), and a fused matrix of two formats.
inline void run(PackedIsa isa) {
  if (best_packed_isa() < isa) {
    GTEST_SKIP() << "this CPU cannot run the " << packed_isa_name(isa) << " kernels (best: "
                 << packed_isa_name(best_packed_isa()) << ")";
  }
  // TESSERA_CPU_ISA caps the whole process (packed_isa() never goes above it): the kernels of a higher ISA cannot
  // run in it, which is a skip like a CPU that lacks them, not a failure.
  if (const PackedIsa cap = forced_packed_isa(std::getenv("TESSERA_CPU_ISA")); cap < isa) {
    GTEST_SKIP() << "TESSERA_CPU_ISA=" << std::getenv("TESSERA_CPU_ISA") << " keeps this process below the "
                 << packed_isa_name(isa) << " kernels";
  }
  const PackedIsa previous = set_packed_isa_limit(isa);
  ASSERT_EQ(packed_isa(), isa);
  struct Case {
    QuantFormat format;
    int64_t rows, cols;
  };
  const Case cases[] = {{QuantFormat::kQ4_1, 67, 576},  {QuantFormat::kQ4_1, 13, 33 * 32},
                        {QuantFormat::kQ4_0, 29, 576},  {QuantFormat::kQ4_0, 7, 1536},
                        {QuantFormat::kQ8_0, 131, 576}, {QuantFormat::kQ8_0, 9, 33 * 32},
                        {QuantFormat::kQ4_K, 19, 768},  {QuantFormat::kQ6_K, 21, 768},
                        {QuantFormat::kQ5_K, 11, 512}};
  uint32_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(quant_format_name(c.format)) + " [" + std::to_string(c.rows) + ", " +
                 std::to_string(c.cols) + "]");
    std::vector<QuantizedRows> parts;
    parts.push_back(random_rows(c.format, c.rows, c.cols, seed++));
    check_matrix(PackedMatrix(std::move(parts)), seed++);
    if (::testing::Test::HasFatalFailure()) break;
  }
  {
    SCOPED_TRACE("fused Q4_1 over Q8_0 rows");
    std::vector<QuantizedRows> parts;
    parts.push_back(random_rows(QuantFormat::kQ4_1, 45, 576, 100));
    parts.push_back(random_rows(QuantFormat::kQ8_0, 30, 576, 101));
    check_matrix(PackedMatrix(std::move(parts)), 102);
  }
  set_packed_isa_limit(previous);
}

}  // namespace tessera::kernels::cpu::batch_invariance
