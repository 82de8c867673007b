#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/rope.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cpu {
namespace {

using testing_support::random_vector;

// 1 / theta^(2i / d) in double.
std::vector<double> default_inv_freq(double theta, int64_t dim) {
  std::vector<double> f(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    f[static_cast<size_t>(i)] = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(dim));
  }
  return f;
}

// Hugging Face's _compute_llama3_parameters, written out in double.
std::vector<double> llama3_inv_freq(double theta, int64_t dim, double factor, double low_freq_factor,
                                    double high_freq_factor, double old_context_len) {
  std::vector<double> f = default_inv_freq(theta, dim);
  const double low_freq_wavelen = old_context_len / low_freq_factor;
  const double high_freq_wavelen = old_context_len / high_freq_factor;
  for (double& inv_freq : f) {
    const double wavelen = 2 * std::numbers::pi / inv_freq;
    double inv_freq_llama = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
    const double smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
    const double smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama;
    const bool is_medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (is_medium) inv_freq_llama = smoothed;
    inv_freq = inv_freq_llama;
  }
  return f;
}

void expect_relative(const std::vector<float>& got, const std::vector<double>& want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], tolerance * std::fabs(want[i])) << "i=" << i;
  }
}

TEST(RopeInvFreq, DefaultMatchesTheFormula) {
  for (const auto& [theta, dim] :
       {std::pair{10000.0f, int64_t{64}}, std::pair{500000.0f, int64_t{128}}, std::pair{1000000.0f, int64_t{2}}}) {
    RopeConfig c;
    c.head_dim = dim;
    c.theta = theta;
    expect_relative(rope_inv_freq(c), default_inv_freq(static_cast<double>(theta), dim), 1e-6);
  }
}

TEST(RopeInvFreq, LinearDividesTheFrequencies) {
  RopeConfig c;
  c.head_dim = 64;
  c.scaling = RopeScalingKind::kLinear;
  c.factor = 4.0f;
  auto want = default_inv_freq(10000.0, 64);
  for (double& f : want) f /= 4.0;
  expect_relative(rope_inv_freq(c), want, 1e-6);
}

TEST(RopeInvFreq, Llama3MatchesHuggingFaceFormula) {
  // Llama 3.1's parameters, then a second set whose medium band covers more of the frequencies.
  struct Params {
    float theta, factor, low, high;
    int64_t dim, old_context;
  };
  for (const Params& p : {Params{500000.0f, 8.0f, 1.0f, 4.0f, 128, 8192}, Params{10000.0f, 4.0f, 1.0f, 16.0f, 64, 512},
                          Params{10000.0f, 32.0f, 2.0f, 3.0f, 96, 2048}}) {
    RopeConfig c;
    c.head_dim = p.dim;
    c.theta = p.theta;
    c.scaling = RopeScalingKind::kLlama3;
    c.factor = p.factor;
    c.low_freq_factor = p.low;
    c.high_freq_factor = p.high;
    c.original_max_position_embeddings = p.old_context;
    const auto want =
        llama3_inv_freq(static_cast<double>(p.theta), p.dim, static_cast<double>(p.factor), static_cast<double>(p.low),
                        static_cast<double>(p.high), static_cast<double>(p.old_context));
    expect_relative(rope_inv_freq(c), want, 5e-6);
    // The scaling really changed something: the lowest frequency is divided by the factor.
    const auto plain = default_inv_freq(static_cast<double>(p.theta), p.dim);
    EXPECT_NEAR(want.back(), plain.back() / static_cast<double>(p.factor), 1e-12);
  }
}

TEST(RopeInvFreq, RejectsBadConfigs) {
  RopeConfig c;
  c.head_dim = 7;
  EXPECT_THROW(rope_inv_freq(c), Error);
  c.head_dim = 8;
  c.theta = 0.0f;
  EXPECT_THROW(rope_inv_freq(c), Error);
  c.theta = 10000.0f;
  c.scaling = RopeScalingKind::kLlama3;
  c.low_freq_factor = 4.0f;
  c.high_freq_factor = 4.0f;
  EXPECT_THROW(rope_inv_freq(c), Error);
}

// Rotation of one head in double, with HF's f32 angle f32(position) * f32(inv_freq).
std::vector<double> rotate_reference(const float* x, int64_t dim, int32_t position, const std::vector<float>& inv_freq,
                                     RopeLayout layout) {
  std::vector<double> out(static_cast<size_t>(dim));
  const int64_t half = dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(position) * inv_freq[static_cast<size_t>(i)];
    const double c = std::cos(static_cast<double>(angle));
    const double s = std::sin(static_cast<double>(angle));
    const int64_t a = layout == RopeLayout::kNeox ? i : 2 * i;
    const int64_t b = layout == RopeLayout::kNeox ? i + half : 2 * i + 1;
    out[static_cast<size_t>(a)] = static_cast<double>(x[a]) * c - static_cast<double>(x[b]) * s;
    out[static_cast<size_t>(b)] = static_cast<double>(x[b]) * c + static_cast<double>(x[a]) * s;
  }
  return out;
}

struct Case {
  RopeLayout layout;
  int64_t head_dim;
};

class RopeApply : public ::testing::TestWithParam<Case> {};

TEST_P(RopeApply, MatchesReferenceInAFusedQkvBuffer) {
  const auto [layout, dim] = GetParam();
  const int64_t heads = 3, kv_heads = 1, tokens = 5;
  const int64_t row = (heads + 2 * kv_heads) * dim;  // [q | k | v] per token, as a fused QKV projection writes
  const auto original = random_vector(tokens * row, 11);
  std::vector<float> qkv = original;
  const std::vector<int32_t> positions = {0, 1, 17, 4095, 3};
  RopeConfig config;
  config.head_dim = dim;
  RopeTable table(config, 8);  // smaller than the largest position: apply_rope grows it
  apply_rope(qkv.data(), heads, row, qkv.data() + heads * dim, kv_heads, row, positions.data(), tokens, table, layout);
  EXPECT_GE(table.positions(), 4096);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads + 2 * kv_heads; ++h) {
      const int64_t offset = t * row + h * dim;
      if (h >= heads + kv_heads) {  // V is not rotated
        for (int64_t d = 0; d < dim; ++d) EXPECT_EQ(qkv[offset + d], original[offset + d]);
        continue;
      }
      const auto want = rotate_reference(original.data() + offset, dim, positions[t], table.inv_freq(), layout);
      for (int64_t d = 0; d < dim; ++d) {
        EXPECT_NEAR(qkv[offset + d], want[d], 1e-6) << "token " << t << " head " << h << " d " << d;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, RopeApply,
                         ::testing::Values(Case{RopeLayout::kNeox, 64}, Case{RopeLayout::kInterleaved, 64},
                                           Case{RopeLayout::kNeox, 2}, Case{RopeLayout::kInterleaved, 6}));

TEST(Rope, InterleavedIsNeoxOnPermutedHeads) {
  // GGUF's llama converter permutes Q/K rows so that interleaved pairs (2i, 2i+1) hold HF's (i, i + d/2).
  const int64_t dim = 16, half = 8;
  const auto x = random_vector(dim, 3);
  std::vector<float> interleaved(dim);
  for (int64_t i = 0; i < half; ++i) {
    interleaved[2 * i] = x[i];
    interleaved[2 * i + 1] = x[i + half];
  }
  std::vector<float> neox = x;
  RopeConfig config;
  config.head_dim = dim;
  RopeTable table(config);
  const int32_t position = 123;
  apply_rope(neox.data(), 1, dim, nullptr, 0, 0, &position, 1, table, RopeLayout::kNeox);
  apply_rope(interleaved.data(), 1, dim, nullptr, 0, 0, &position, 1, table, RopeLayout::kInterleaved);
  for (int64_t i = 0; i < half; ++i) {
    EXPECT_EQ(interleaved[2 * i], neox[i]);
    EXPECT_EQ(interleaved[2 * i + 1], neox[i + half]);
  }
}

TEST(Rope, PositionZeroIsIdentityAndPairsKeepTheirNorm) {
  const int64_t dim = 32;
  const auto x = random_vector(2 * dim, 5);
  std::vector<float> y = x;
  RopeConfig config;
  config.head_dim = dim;
  RopeTable table(config);
  const std::vector<int32_t> positions = {0, 777};
  apply_rope(y.data(), 1, dim, nullptr, 0, 0, positions.data(), 2, table, RopeLayout::kNeox);
  for (int64_t d = 0; d < dim; ++d) EXPECT_EQ(y[d], x[d]);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const auto norm = [&](const std::vector<float>& v) {
      return std::hypot(static_cast<double>(v[dim + i]), static_cast<double>(v[dim + i + dim / 2]));
    };
    EXPECT_NEAR(norm(y), norm(x), 1e-6);
  }
}

TEST(RopeTable, LazyGrowthGivesTheSameValuesAsATableBuiltUpFront) {
  RopeConfig config;
  config.head_dim = 64;
  config.theta = 500000.0f;
  config.scaling = RopeScalingKind::kLlama3;
  config.factor = 8.0f;
  RopeTable grown(config);
  EXPECT_EQ(grown.positions(), 0);
  for (int64_t p = 1; p <= 1000; p += 37) grown.reserve(p);
  RopeTable upfront(config, 2000);
  ASSERT_GE(grown.positions(), 1000);
  for (int64_t p = 0; p < 1000; ++p) {
    for (int64_t i = 0; i < 32; ++i) {
      ASSERT_EQ(grown.cos(p)[i], upfront.cos(p)[i]);
      ASSERT_EQ(grown.sin(p)[i], upfront.sin(p)[i]);
    }
  }
  // cos/sin of f32 angles.
  const float angle = 999.0f * upfront.inv_freq()[3];
  EXPECT_NEAR(upfront.cos(999)[3], std::cos(static_cast<double>(angle)), 1e-7);
  EXPECT_NEAR(upfront.sin(999)[3], std::sin(static_cast<double>(angle)), 1e-7);
}

TEST(Rope, RejectsBadArguments) {
  RopeConfig config;
  config.head_dim = 8;
  RopeTable table(config);
  std::vector<float> q(16, 1.0f);
  const int32_t negative = -1;
  EXPECT_THROW(apply_rope(q.data(), 1, 8, nullptr, 0, 0, &negative, 1, table, RopeLayout::kNeox), Error);
  const int32_t zero = 0;
  EXPECT_THROW(apply_rope(q.data(), 2, 8, nullptr, 0, 0, &zero, 1, table, RopeLayout::kNeox), Error);  // stride
  EXPECT_THROW(apply_rope(q.data(), 1, 8, nullptr, 1, 8, &zero, 1, table, RopeLayout::kNeox), Error);  // null k
}

}  // namespace
}  // namespace tessera::kernels::cpu
