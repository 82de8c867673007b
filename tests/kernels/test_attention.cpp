#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/base/half.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_head.h"
#include "kernels/cpu/packed_matrix.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cpu {
namespace {

using testing_support::random_vector;

// A paged cache with owned storage, its unused slots filled with a sentinel; f32 (k, v) or f16 (k16, v16).
struct Cache {
  Cache(int64_t num_blocks, int64_t block_size, int64_t kv_heads, int64_t head_dim, KvDtype dtype = KvDtype::kF32) {
    const auto elements = static_cast<size_t>(num_blocks * block_size * kv_heads * head_dim);
    if (dtype == KvDtype::kF16) {
      k16.assign(elements, float_to_fp16(kSentinel).bits);
      v16.assign(elements, float_to_fp16(kSentinel).bits);
      view = {k16.data(), v16.data(), dtype, num_blocks, block_size, kv_heads, head_dim};
    } else {
      k.assign(elements, kSentinel);
      v.assign(elements, kSentinel);
      view = {k.data(), v.data(), dtype, num_blocks, block_size, kv_heads, head_dim};
    }
  }
  // Element i of K and V as floats, whichever the dtype.
  float k_at(size_t i) const { return k16.empty() ? k[i] : fp16_to_float(fp16{k16[i]}); }
  float v_at(size_t i) const { return v16.empty() ? v[i] : fp16_to_float(fp16{v16[i]}); }
  static constexpr float kSentinel = 12288.0f;  // 1.5 * 2^13: exact in f16 too
  std::vector<float> k, v;
  std::vector<uint16_t> k16, v16;
  KvCacheView view;
};

// x with every element rounded to f16 and back: what an f16 cache holds for it.
std::vector<float> f16_rounded(std::vector<float> x) {
  for (float& e : x) e = fp16_to_float(float_to_fp16(e));
  return x;
}

// Causal GQA attention in double over contiguous K/V [positions, kv_heads, dim]; q/out [n, heads, dim].
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                              int64_t start, int64_t n, int64_t heads, int64_t kv_heads, int64_t dim, double scale) {
  std::vector<double> out(static_cast<size_t>(n * heads * dim), 0.0);
  const int64_t group = heads / kv_heads;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t context = start + t + 1;
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t g = h / group;
      std::vector<double> s(static_cast<size_t>(context));
      for (int64_t j = 0; j < context; ++j) {
        double dot = 0.0;
        for (int64_t d = 0; d < dim; ++d) {
          dot += static_cast<double>(q[static_cast<size_t>((t * heads + h) * dim + d)]) *
                 static_cast<double>(k[static_cast<size_t>((j * kv_heads + g) * dim + d)]);
        }
        s[static_cast<size_t>(j)] = dot * scale;
      }
      const double m = *std::max_element(s.begin(), s.end());
      double total = 0.0;
      for (double& x : s) total += (x = std::exp(x - m));
      for (int64_t j = 0; j < context; ++j) {
        for (int64_t d = 0; d < dim; ++d) {
          out[static_cast<size_t>((t * heads + h) * dim + d)] +=
              s[static_cast<size_t>(j)] / total *
              static_cast<double>(v[static_cast<size_t>((j * kv_heads + g) * dim + d)]);
        }
      }
    }
  }
  return out;
}

struct Case {
  int64_t heads, kv_heads, head_dim, block_size, prompt;
};

class AttentionCases : public ::testing::TestWithParam<Case> {};

void check_chunked_prefill_then_decode(const Case& c, KvDtype dtype);

// A prompt prefilled in two chunks, then decoded token by token, through a shuffled block table: every output
// matches the contiguous double-precision reference, in the portable build and in the best one this CPU runs
// (attention_head.h: AVX2 where the CPU has it), over an f32 and over an f16 cache (whose reference is computed from
// the f16-rounded K and V: the kernels' only loss with it is that rounding).
TEST_P(AttentionCases, ChunkedPrefillThenDecodeMatchReference) {
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16}) {
    for (const PackedIsa isa : {PackedIsa::kScalar, best_packed_isa()}) {
      SCOPED_TRACE(std::string(packed_isa_name(isa)) + ", " + std::string(kv_dtype_name(dtype)) + " cache");
      const PackedIsa previous = set_packed_isa_limit(isa);
      check_chunked_prefill_then_decode(GetParam(), dtype);
      set_packed_isa_limit(previous);
      if (HasFatalFailure()) return;
    }
  }
}

void check_chunked_prefill_then_decode(const Case& c, KvDtype dtype) {
  const auto [heads, kv_heads, dim, block_size, prompt] = c;
  const int64_t decode_steps = 4;
  const int64_t total = prompt + decode_steps;
  const int64_t table_len = (total + block_size - 1) / block_size;
  const int64_t num_blocks = table_len + 3;
  Cache cache(num_blocks, block_size, kv_heads, dim, dtype);
  std::vector<int32_t> table(static_cast<size_t>(num_blocks));
  for (int64_t b = 0; b < num_blocks; ++b) table[static_cast<size_t>(b)] = static_cast<int32_t>(b);
  std::shuffle(table.begin(), table.end(), std::mt19937(7));
  table.resize(static_cast<size_t>(table_len));

  const int64_t kv_row = kv_heads * dim;
  const auto q = random_vector(total * heads * dim, 1);
  const auto k = random_vector(total * kv_row, 2);
  const auto v = random_vector(total * kv_row, 3);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  const bool f16 = dtype == KvDtype::kF16;
  const auto want = reference(q, f16 ? f16_rounded(k) : k, f16 ? f16_rounded(v) : v, 0, total, heads, kv_heads, dim,
                              static_cast<double>(scale));

  std::vector<float> out(q.size(), -1.0f);
  const int64_t q_row = heads * dim;
  auto run = [&](int64_t start, int64_t n) {
    write_kv(cache.view, table.data(), table_len, start, n, k.data() + start * kv_row, kv_row,
             v.data() + start * kv_row, kv_row);
    attention(cache.view, table.data(), table_len, start, n, q.data() + start * q_row, q_row, heads, scale,
              out.data() + start * q_row, q_row);
  };
  const int64_t first_chunk = prompt / 3 + 1;
  run(0, first_chunk);
  run(first_chunk, prompt - first_chunk);
  for (int64_t step = 0; step < decode_steps; ++step) run(prompt + step, 1);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], 2e-6) << "i=" << i;

  // Blocks outside the sequence's table were never written.
  for (int64_t b = 0; b < num_blocks; ++b) {
    if (std::find(table.begin(), table.end(), b) != table.end()) continue;
    const auto first = static_cast<size_t>(b * block_size * kv_row);
    for (size_t i = first; i < first + static_cast<size_t>(block_size * kv_row); ++i) {
      ASSERT_EQ(cache.k_at(i), Cache::kSentinel);
      ASSERT_EQ(cache.v_at(i), Cache::kSentinel);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionCases,
                         ::testing::Values(Case{9, 3, 64, 16, 37},  // SmolLM2's heads
                                           Case{4, 4, 8, 4, 13},    // plain multi-head
                                           Case{6, 1, 5, 1, 7},     // multi-query, odd head_dim, 1-slot blocks
                                           Case{8, 2, 128, 32, 70}, Case{2, 1, 3, 3, 1},
                                           Case{4, 2, 32, 8, 20},    // the AVX2 build's three register-held sizes
                                           Case{3, 3, 24, 5, 11}));  // and its generic one (dim % 8 == 0)

TEST(Attention, StridedQkvAndOutputBuffers) {
  // q and k/v read straight from a fused [q | k | v] projection row; output rows wider than heads * dim.
  const int64_t heads = 4, kv_heads = 2, dim = 6, n = 9, block_size = 4;
  const int64_t qkv_row = (heads + 2 * kv_heads) * dim;
  const int64_t out_row = heads * dim + 3;
  const auto qkv = random_vector(n * qkv_row, 4);
  Cache cache(3, block_size, kv_heads, dim);
  const std::vector<int32_t> table = {2, 0, 1};
  write_kv(cache.view, table.data(), 3, 0, n, qkv.data() + heads * dim, qkv_row, qkv.data() + (heads + kv_heads) * dim,
           qkv_row);
  std::vector<float> out(static_cast<size_t>(n * out_row), -7.0f);
  attention(cache.view, table.data(), 3, 0, n, qkv.data(), qkv_row, heads, 0.5f, out.data(), out_row);

  std::vector<float> q, k, v;
  for (int64_t t = 0; t < n; ++t) {
    const float* row = qkv.data() + t * qkv_row;
    q.insert(q.end(), row, row + heads * dim);
    k.insert(k.end(), row + heads * dim, row + (heads + kv_heads) * dim);
    v.insert(v.end(), row + (heads + kv_heads) * dim, row + qkv_row);
  }
  const auto want = reference(q, k, v, 0, n, heads, kv_heads, dim, 0.5);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < heads * dim; ++i) {
      ASSERT_NEAR(out[static_cast<size_t>(t * out_row + i)], want[static_cast<size_t>(t * heads * dim + i)], 2e-6);
    }
    for (int64_t i = heads * dim; i < out_row; ++i) ASSERT_EQ(out[static_cast<size_t>(t * out_row + i)], -7.0f);
  }
}

TEST(Attention, LargeScoresStayFinite) {
  // Scores in the thousands would overflow exp() without the max subtraction; one key dominates.
  const int64_t dim = 4, n = 5;
  Cache cache(2, 4, 1, dim);
  const std::vector<int32_t> table = {1, 0};
  auto k = random_vector(n * dim, 5, 0.1f);
  for (int64_t d = 0; d < dim; ++d) k[static_cast<size_t>(2 * dim + d)] = 100.0f;  // key 2 aligns with q
  const auto v = random_vector(n * dim, 6);
  write_kv(cache.view, table.data(), 2, 0, n, k.data(), dim, v.data(), dim);
  const std::vector<float> q(dim, 100.0f);
  std::vector<float> out(dim);
  attention(cache.view, table.data(), 2, n - 1, 1, q.data(), dim, 1, 1.0f, out.data(), dim);
  for (int64_t d = 0; d < dim; ++d) {
    ASSERT_TRUE(std::isfinite(out[static_cast<size_t>(d)]));
    EXPECT_NEAR(out[static_cast<size_t>(d)], v[static_cast<size_t>(2 * dim + d)], 1e-6);
  }
}

TEST(Attention, FirstTokenAttendsOnlyToItself) {
  const int64_t dim = 8;
  Cache cache(1, 4, 1, dim);
  const int32_t block = 0;
  const auto k = random_vector(dim, 7);
  const auto v = random_vector(dim, 8);
  const auto q = random_vector(dim, 9);
  write_kv(cache.view, &block, 1, 0, 1, k.data(), dim, v.data(), dim);
  std::vector<float> out(dim);
  attention(cache.view, &block, 1, 0, 1, q.data(), dim, 1, 0.3f, out.data(), dim);
  for (int64_t d = 0; d < dim; ++d) EXPECT_FLOAT_EQ(out[static_cast<size_t>(d)], v[static_cast<size_t>(d)]);
}

TEST(Attention, HeadRangesGiveTheFullResultBitForBit) {
  // The decoder spreads one sequence's query heads over threads: any split must give attention()'s very bits, and a
  // range must leave the other heads' output alone.
  const int64_t heads = 6, kv_heads = 2, dim = 8, start = 5, n = 4, block_size = 4;
  Cache cache(4, block_size, kv_heads, dim);
  const std::vector<int32_t> table = {3, 1, 0};
  const auto k = random_vector((start + n) * kv_heads * dim, 21);
  const auto v = random_vector((start + n) * kv_heads * dim, 22);
  const auto q = random_vector(n * heads * dim, 23);
  write_kv(cache.view, table.data(), 3, 0, start + n, k.data(), kv_heads * dim, v.data(), kv_heads * dim);
  std::vector<float> whole(static_cast<size_t>(n * heads * dim));
  attention(cache.view, table.data(), 3, start, n, q.data(), heads * dim, heads, 0.35f, whole.data(), heads * dim);
  for (const std::vector<int64_t>& cuts : {std::vector<int64_t>{0, 1, 4, 6}, {0, 3, 6}, {0, 5, 6}}) {
    std::vector<float> parts(whole.size(), -3.0f);
    for (size_t c = 0; c + 1 < cuts.size(); ++c) {
      attention_heads(cache.view, table.data(), 3, start, n, q.data(), heads * dim, heads, cuts[c], cuts[c + 1], 0.35f,
                      parts.data(), heads * dim);
      for (int64_t t = 0; t < n; ++t) {  // heads past this range are still untouched
        for (int64_t i = cuts[c + 1] * dim; i < heads * dim; ++i) ASSERT_EQ(parts[t * heads * dim + i], -3.0f);
      }
    }
    for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(parts[i], whole[i]) << "element " << i;  // bit for bit
  }
  std::vector<float> out(whole.size());
  EXPECT_THROW(attention_heads(cache.view, table.data(), 3, start, n, q.data(), heads * dim, heads, 2, 7, 0.35f,
                               out.data(), heads * dim),
               Error);
  EXPECT_THROW(attention_heads(cache.view, table.data(), 3, start, n, q.data(), heads * dim, heads, 4, 3, 0.35f,
                               out.data(), heads * dim),
               Error);
}

TEST(Attention, F16CacheGivesTheF32CachesBitsForTheSameValues) {
  // An f16 row is widened exactly and then takes an f32 row's operations (attention_head.h): with K and V that f16
  // represents exactly, the two caches must give the same bits, prefill and decode, in both builds. write_kv rounds
  // to nearest even, as float_to_fp16.
  const int64_t heads = 9, kv_heads = 3, dim = 64, block_size = 16, prompt = 40, total = prompt + 3;
  const int64_t kv_row = kv_heads * dim, q_row = heads * dim, table_len = (total + block_size - 1) / block_size;
  std::vector<int32_t> table(static_cast<size_t>(table_len));
  for (int64_t b = 0; b < table_len; ++b) table[static_cast<size_t>(b)] = static_cast<int32_t>(table_len - 1 - b);
  const auto q = random_vector(total * q_row, 31);
  const auto k = random_vector(total * kv_row, 32);
  const auto v = random_vector(total * kv_row, 33);
  for (const PackedIsa isa : {PackedIsa::kScalar, best_packed_isa()}) {
    SCOPED_TRACE(std::string(packed_isa_name(isa)));
    const PackedIsa previous = set_packed_isa_limit(isa);
    std::vector<float> outs[2];
    for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16}) {
      Cache cache(table_len, block_size, kv_heads, dim, dtype);
      const bool f16 = dtype == KvDtype::kF16;
      // The f32 cache gets the values already rounded; the f16 cache rounds them itself.
      const std::vector<float> k_in = f16 ? k : f16_rounded(k), v_in = f16 ? v : f16_rounded(v);
      std::vector<float>& out = outs[f16 ? 1 : 0];
      out.assign(q.size(), 0.0f);
      auto run = [&](int64_t start, int64_t n) {
        write_kv(cache.view, table.data(), table_len, start, n, k_in.data() + start * kv_row, kv_row,
                 v_in.data() + start * kv_row, kv_row);
        attention(cache.view, table.data(), table_len, start, n, q.data() + start * q_row, q_row, heads, 0.125f,
                  out.data() + start * q_row, q_row);
      };
      run(0, prompt);
      for (int64_t t = prompt; t < total; ++t) run(t, 1);
      if (f16) {  // what write_kv stored: float_to_fp16 of every input, at its slot
        for (int64_t p = 0; p < total; ++p) {
          const int64_t slot = table[static_cast<size_t>(p / block_size)] * block_size + p % block_size;
          for (int64_t i = 0; i < kv_row; ++i) {
            ASSERT_EQ(cache.k16[static_cast<size_t>(slot * kv_row + i)], float_to_fp16(k[static_cast<size_t>(p * kv_row + i)]).bits);
            ASSERT_EQ(cache.v16[static_cast<size_t>(slot * kv_row + i)], float_to_fp16(v[static_cast<size_t>(p * kv_row + i)]).bits);
          }
        }
      }
    }
    set_packed_isa_limit(previous);
    for (size_t i = 0; i < outs[0].size(); ++i) ASSERT_EQ(outs[1][i], outs[0][i]) << "element " << i;  // bit for bit
  }
}

TEST(Attention, PrefillGivesEachTokenItsDecodeBits) {
  // Batch invariance over chunking: the AVX2 build runs a prefill chunk in tiles of kQueryTile tokens that share each
  // pass over the cache (attention_head.h); every token must still get the bits it gets alone, as a decode step, and
  // the same in any chunking. Every tile size occurs (37 = 9 * 4 + 1 tokens, chunks of 6 and 31), for the
  // register-held head sizes and a generic one, f32 and f16 caches, in both builds.
  for (const Case& c : {Case{9, 3, 64, 16, 37}, Case{4, 2, 32, 8, 37}, Case{8, 2, 128, 32, 37}, Case{3, 3, 24, 5, 37}}) {
    for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16}) {
      for (const PackedIsa isa : {PackedIsa::kScalar, best_packed_isa()}) {
        SCOPED_TRACE(std::to_string(c.head_dim) + "-wide heads, " + std::string(kv_dtype_name(dtype)) + " cache, " +
                     std::string(packed_isa_name(isa)));
        const PackedIsa previous = set_packed_isa_limit(isa);
        const int64_t n = c.prompt, kv_row = c.kv_heads * c.head_dim, q_row = c.heads * c.head_dim;
        const int64_t table_len = (n + c.block_size - 1) / c.block_size;
        std::vector<int32_t> table(static_cast<size_t>(table_len));
        for (int64_t b = 0; b < table_len; ++b) table[static_cast<size_t>(b)] = static_cast<int32_t>(table_len - 1 - b);
        Cache cache(table_len, c.block_size, c.kv_heads, c.head_dim, dtype);
        const auto q = random_vector(n * q_row, 41);
        const auto k = random_vector(n * kv_row, 42);
        const auto v = random_vector(n * kv_row, 43);
        write_kv(cache.view, table.data(), table_len, 0, n, k.data(), kv_row, v.data(), kv_row);
        const auto run = [&](const std::vector<int64_t>& chunks) {
          std::vector<float> out(q.size(), -1.0f);
          int64_t start = 0;
          for (const int64_t chunk : chunks) {
            attention(cache.view, table.data(), table_len, start, chunk, q.data() + start * q_row, q_row, c.heads,
                      0.125f, out.data() + start * q_row, q_row);
            start += chunk;
          }
          return out;
        };
        const std::vector<float> decode = run(std::vector<int64_t>(static_cast<size_t>(n), 1));
        const std::vector<float> whole = run({n});
        const std::vector<float> chunked = run({6, n - 6});
        set_packed_isa_limit(previous);
        for (size_t i = 0; i < decode.size(); ++i) {
          ASSERT_EQ(whole[i], decode[i]) << "one chunk, element " << i;  // bit for bit
          ASSERT_EQ(chunked[i], decode[i]) << "two chunks, element " << i;
        }
      }
    }
  }
}

TEST(Attention, VectorExpIsWithinTwoUlpOfStdExp) {
  // The AVX2 softmax's exp (attention_head.h) against std::exp over every input the softmax can see, score - max in
  // [-90, 0]: at most 2 ulp apart where e^x is a normal float, exactly 0 below e^-87.33; and the returned sum is the
  // sum of what it stored. Tails of every length 0..7 go through the masked last group.
  if (best_packed_isa() < PackedIsa::kAvx2) GTEST_SKIP() << "this CPU has no AVX2";
  std::vector<float> x;
  for (float v = -90.0f; v <= 0.0f; v += 0.00137f) x.push_back(v);
  x.push_back(0.0f);
  for (size_t n : {x.size(), x.size() - 1, x.size() - 3, x.size() - 7}) {
    std::vector<float> e(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n));
    const float total = detail::softmax_exp_avx2(e.data(), static_cast<int64_t>(n), 0.0f);
    double sum = 0.0;
    int worst_ulp = 0;
    for (size_t i = 0; i < n; ++i) {
      sum += static_cast<double>(e[i]);
      const float want = std::exp(x[i]);
      if (x[i] < -87.3365478515625f) {
        ASSERT_EQ(e[i], 0.0f) << "x=" << x[i];
        continue;
      }
      if (want < std::numeric_limits<float>::min()) continue;  // subnormal results: flushed or not, both negligible
      const int ulp = std::abs(std::bit_cast<int32_t>(e[i]) - std::bit_cast<int32_t>(want));
      worst_ulp = std::max(worst_ulp, ulp);
      ASSERT_LE(ulp, 2) << "x=" << x[i] << ": " << e[i] << " against std::exp's " << want;
    }
    EXPECT_NEAR(static_cast<double>(total), sum, 1e-5 * sum);
    std::printf("n=%zu: worst %d ulp\n", n, worst_ulp);
  }
}

TEST(Attention, ParsesKvDtypes) {
  EXPECT_EQ(parse_kv_dtype("f32"), KvDtype::kF32);
  EXPECT_EQ(parse_kv_dtype("f16"), KvDtype::kF16);
  EXPECT_EQ(kv_dtype_bytes(KvDtype::kF16), 2u);
  try {
    parse_kv_dtype("fp8");
    FAIL() << "fp8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fp8'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("f32 or f16"), std::string::npos) << e.what();
  }
}

TEST(Attention, RejectsBadTablesAndShapes) {
  const int64_t dim = 4;
  Cache cache(2, 4, 2, dim);
  const std::vector<float> x(64, 1.0f);
  std::vector<float> out(64);
  const std::vector<int32_t> table = {0, 1};
  const std::vector<int32_t> bad_block = {0, 2};
  const std::vector<int32_t> negative_block = {-1};
  // 9 positions need 3 blocks of 4.
  EXPECT_THROW(write_kv(cache.view, table.data(), 2, 0, 9, x.data(), 8, x.data(), 8), Error);
  EXPECT_THROW(write_kv(cache.view, bad_block.data(), 2, 2, 3, x.data(), 8, x.data(), 8), Error);
  EXPECT_THROW(write_kv(cache.view, negative_block.data(), 1, 0, 1, x.data(), 8, x.data(), 8), Error);
  EXPECT_THROW(write_kv(cache.view, table.data(), 2, 0, 1, x.data(), 7, x.data(), 8), Error);  // stride < row
  EXPECT_THROW(write_kv(cache.view, table.data(), 2, -1, 1, x.data(), 8, x.data(), 8), Error);
  EXPECT_THROW(attention(cache.view, table.data(), 2, 0, 1, x.data(), 12, 3, 1.0f, out.data(), 12), Error);  // 3 % 2
  EXPECT_THROW(attention(cache.view, table.data(), 2, 6, 3, x.data(), 16, 4, 1.0f, out.data(), 16), Error);
  KvCacheView empty = cache.view;
  empty.k = nullptr;
  EXPECT_THROW(attention(empty, table.data(), 2, 0, 1, x.data(), 16, 4, 1.0f, out.data(), 16), Error);
}

}  // namespace
}  // namespace tessera::kernels::cpu
