#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/sampling.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Normal logits with a spread of a few nats, as a real LM head gives: a handful of tokens carry most of the mass.
std::vector<float> random_logits(int64_t n, uint32_t seed) { return testing_support::random_normal(n, seed, 3.0f); }

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

std::map<int32_t, double> as_map(const std::vector<TokenProb>& dist) {
  std::map<int32_t, double> m;
  for (const auto& t : dist) m[t.id] = t.prob;
  return m;
}

TEST(SamplingRng, ReproducesReferenceXoshiro256StarStar) {
  // Values from an independent Python transcription of splitmix64 and xoshiro256** (Blackman & Vigna's C code):
  // they pin the generator so that a seed replays the same tokens on every machine and in every version.
  SamplingRng zero(0);
  EXPECT_EQ(zero.next(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(zero.next(), 0xbf6e1f784956452aull);
  EXPECT_EQ(zero.next(), 0x1a5f849d4933e6e0ull);
  SamplingRng seeded(12345);
  EXPECT_EQ(seeded.next(), 0xbe6a36374160d49bull);
  SamplingRng step = SamplingRng::for_step(7, 3);
  EXPECT_EQ(step.next(), 0x80568daaa2ae92dbull);
  EXPECT_EQ(step.next(), 0x3bd7dfdf1447d9e7ull);
}

TEST(SamplingRng, UniformIsInUnitIntervalWithMeanOneHalf) {
  SamplingRng rng(99);
  double sum = 0.0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);  // ~5 standard deviations
}

TEST(Sampling, ArgmaxTakesTheLowestIdAmongTies) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, kNegInf};
  EXPECT_EQ(argmax(logits.data(), 5), 1);
  const std::vector<float> all_equal(6, 0.5f);
  EXPECT_EQ(argmax(all_equal.data(), 6), 0);
}

TEST(Sampling, GreedyIgnoresSeedAndStep) {
  const auto logits = random_logits(1000, 1);
  const int32_t best = argmax(logits.data(), 1000);
  SamplingParams greedy;  // temperature 0
  for (uint64_t seed : {0ull, 1ull, 77ull}) {
    greedy.seed = seed;
    for (uint64_t step = 0; step < 20; ++step) EXPECT_EQ(sample_token(logits.data(), 1000, greedy, step), best);
  }
  // Greedy also ignores the other filters.
  greedy.top_k = 5;
  greedy.top_p = 0.1f;
  greedy.min_p = 0.9f;
  EXPECT_EQ(sample_token(logits.data(), 1000, greedy, uint64_t{3}), best);
}

TEST(Sampling, SameSeedAndStepReplayTheSameTokens) {
  const auto logits = random_logits(500, 2);
  SamplingParams p{1.0f, 0, 1.0f, 0.0f, 1234};
  std::vector<int32_t> first, replay, other_seed;
  for (uint64_t step = 0; step < 200; ++step) {
    first.push_back(sample_token(logits.data(), 500, p, step));
    replay.push_back(sample_token(logits.data(), 500, p, step));
  }
  p.seed = 1235;
  for (uint64_t step = 0; step < 200; ++step) other_seed.push_back(sample_token(logits.data(), 500, p, step));
  EXPECT_EQ(first, replay);
  EXPECT_NE(first, other_seed);
  EXPECT_GT(std::set<int32_t>(first.begin(), first.end()).size(), 5u) << "temperature 1 must not be greedy";
}

// Draws many tokens with a fixed seed and compares the frequencies with independently computed probabilities:
// Pearson's chi-square statistic must stay under the 1e-6 tail of its distribution (deterministic, so no flakes).
void expect_frequencies(const std::vector<float>& logits, const SamplingParams& params,
                        const std::map<int32_t, double>& expected) {
  const int draws = 200000;
  std::map<int32_t, int> counts;
  for (int step = 0; step < draws; ++step) {
    ++counts[sample_token(logits.data(), static_cast<int64_t>(logits.size()), params, static_cast<uint64_t>(step))];
  }
  double chi2 = 0.0;
  for (const auto& [id, count] : counts) {
    ASSERT_TRUE(expected.count(id)) << "token " << id << " was filtered out but drawn " << count << " times";
  }
  for (const auto& [id, prob] : expected) {
    const double want = prob * draws;
    const double got = counts.count(id) ? counts.at(id) : 0;
    chi2 += (got - want) * (got - want) / want;
  }
  // 1e-6 upper quantiles of chi-square for df = 1..7.
  const double limits[] = {23.9, 27.6, 30.7, 33.4, 35.9, 38.3, 40.5};
  ASSERT_LE(expected.size(), 8u);
  EXPECT_LT(chi2, limits[expected.size() - 2]) << "chi-square over " << expected.size() << " tokens";
}

TEST(Sampling, FrequenciesFollowTheTemperedDistribution) {
  const std::vector<float> logits = {0.5f, 1.5f, -1.0f, 0.0f, 2.0f, kNegInf};
  const double temperature = 0.7;
  std::map<int32_t, double> expected;
  double total = 0.0;
  for (int32_t i = 0; i < 5; ++i) total += std::exp(static_cast<double>(logits[static_cast<size_t>(i)]) / temperature);
  for (int32_t i = 0; i < 5; ++i) {
    expected[i] = std::exp(static_cast<double>(logits[static_cast<size_t>(i)]) / temperature) / total;
  }
  expect_frequencies(logits, SamplingParams{0.7f, 0, 1.0f, 0.0f, 42}, expected);
}

TEST(Sampling, FrequenciesAfterTopKAndTopP) {
  // probs 0.4, 0.25, 0.15, 0.1, 0.06, 0.04. top_k = 4 renormalises over 0.9 of the mass: 0.444, 0.278, 0.167,
  // 0.111; then top_p = 0.8 keeps the first three (0.444 + 0.278 = 0.722 < 0.8 <= 0.889).
  const auto logits = logits_of({0.25, 0.4, 0.1, 0.15, 0.04, 0.06});
  const std::map<int32_t, double> expected = {{1, 0.4 / 0.8}, {0, 0.25 / 0.8}, {3, 0.15 / 0.8}};
  const auto dist = as_map(sampling_distribution(logits.data(), 6, SamplingParams{1.0f, 4, 0.8f, 0.0f, 0}));
  ASSERT_EQ(dist.size(), expected.size());
  for (const auto& [id, prob] : expected) EXPECT_NEAR(dist.at(id), prob, 1e-6) << id;
  expect_frequencies(logits, SamplingParams{1.0f, 4, 0.8f, 0.0f, 9}, expected);
}

TEST(Sampling, TopKOfOneIsGreedy) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_logits(3000, seed);
    const SamplingParams p{1.3f, 1, 1.0f, 0.0f, seed};
    EXPECT_EQ(sample_token(logits.data(), 3000, p, uint64_t{seed}), argmax(logits.data(), 3000));
  }
  // Ties: the lower id wins, as in greedy.
  const std::vector<float> tied = {0.0f, 2.0f, 2.0f, 1.0f};
  EXPECT_EQ(sample_token(tied.data(), 4, SamplingParams{1.0f, 1, 1.0f, 0.0f, 5}, uint64_t{0}), 1);
}

TEST(Sampling, TinyTopPKeepsOnlyTheArgmax) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_logits(49152, seed);
    for (const float top_p : {0.0f, 1e-6f}) {
      const auto dist = sampling_distribution(logits.data(), 49152, SamplingParams{1.0f, 0, top_p, 0.0f, 0});
      ASSERT_EQ(dist.size(), 1u);
      EXPECT_EQ(dist[0].id, argmax(logits.data(), 49152));
      EXPECT_EQ(dist[0].prob, 1.0);
    }
  }
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingTheMass) {
  const auto logits = logits_of({0.05, 0.5, 0.15, 0.3});
  const auto keep = [&](float top_p) {
    std::set<int32_t> ids;
    for (const auto& t : sampling_distribution(logits.data(), 4, SamplingParams{1.0f, 0, top_p, 0.0f, 0})) {
      ids.insert(t.id);
    }
    return ids;
  };
  EXPECT_EQ(keep(0.45f), (std::set<int32_t>{1}));
  EXPECT_EQ(keep(0.7f), (std::set<int32_t>{1, 3}));
  EXPECT_EQ(keep(0.9f), (std::set<int32_t>{1, 3, 2}));
  EXPECT_EQ(keep(1.0f), (std::set<int32_t>{0, 1, 2, 3}));
}

TEST(Sampling, NucleusInALargeVocabularyMatchesAFullSort) {
  // The partial sort grows in steps; compare with a plain full sort for nuclei of many sizes.
  const auto logits = random_logits(20000, 11);
  std::vector<double> probs(logits.size());
  double total = 0.0;
  const float m = *std::max_element(logits.begin(), logits.end());
  for (size_t i = 0; i < logits.size(); ++i) total += (probs[i] = std::exp(static_cast<double>(logits[i] - m)));
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
  for (const float top_p : {0.3f, 0.9f, 0.99f, 0.999f}) {
    size_t want = 0;
    double mass = 0.0;
    while (mass < static_cast<double>(top_p)) mass += probs[static_cast<size_t>(order[want++])] / total;
    const auto dist = sampling_distribution(logits.data(), 20000, SamplingParams{1.0f, 0, top_p, 0.0f, 0});
    EXPECT_EQ(dist.size(), want) << "top_p " << top_p;
    std::set<int32_t> got;
    for (const auto& t : dist) got.insert(t.id);
    EXPECT_EQ(got, std::set<int32_t>(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(want)));
  }
}

TEST(Sampling, MinPDropsTokensBelowAFractionOfTheTop) {
  const auto logits = logits_of({0.05, 0.5, 0.15, 0.3});
  const auto dist = [&](float min_p) {
    return as_map(sampling_distribution(logits.data(), 4, {1.0f, 0, 1.0f, min_p, 0}));
  };
  // min_p 0.2: threshold 0.1 drops 0.05.
  auto d = dist(0.2f);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_NEAR(d.at(1), 0.5 / 0.95, 1e-6);
  EXPECT_NEAR(d.at(2), 0.15 / 0.95, 1e-6);
  // min_p 0.5: threshold 0.25 keeps 0.5 and 0.3.
  d = dist(0.5f);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d.at(3), 0.3 / 0.8, 1e-6);
  // min_p 1 keeps only the top token.
  EXPECT_EQ(dist(1.0f).size(), 1u);
  // Temperature changes the probabilities min-p sees: at temperature 3 the distribution flattens and 0.05 passes.
  EXPECT_EQ(as_map(sampling_distribution(logits.data(), 4, {3.0f, 0, 1.0f, 0.2f, 0})).size(), 4u);
}

TEST(Sampling, ForbiddenTokensAreNeverDrawn) {
  std::vector<float> logits(50, 0.0f);
  for (size_t i = 0; i < logits.size(); i += 2) logits[i] = kNegInf;
  for (uint64_t step = 0; step < 500; ++step) {
    EXPECT_EQ(sample_token(logits.data(), 50, SamplingParams{2.0f, 0, 1.0f, 0.0f, 3}, step) % 2, 1);
  }
}

TEST(Sampling, RejectsBadInput) {
  std::vector<float> logits = {0.0f, 1.0f};
  SamplingParams p{1.0f, 0, 1.0f, 0.0f, 0};
  SamplingParams bad = p;
  bad.temperature = -1.0f;
  EXPECT_THROW(sample_token(logits.data(), 2, bad, uint64_t{0}), Error);
  bad = p;
  bad.top_p = 1.5f;
  EXPECT_THROW(sample_token(logits.data(), 2, bad, uint64_t{0}), Error);
  bad = p;
  bad.min_p = -0.1f;
  EXPECT_THROW(sample_token(logits.data(), 2, bad, uint64_t{0}), Error);
  EXPECT_THROW(sample_token(logits.data(), 0, p, uint64_t{0}), Error);
  logits[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(sample_token(logits.data(), 2, p, uint64_t{0}), Error);
  logits = {kNegInf, kNegInf};
  EXPECT_THROW(sample_token(logits.data(), 2, p, uint64_t{0}), Error);
  logits = {0.0f, std::numeric_limits<float>::infinity()};
  EXPECT_THROW(sample_token(logits.data(), 2, p, uint64_t{0}), Error);
}

}  // namespace
}  // namespace tessera::kernels::cpu
