// GPU sampling against the CPU twin: greedy picks are identical; random picks are the token the CPU's
// distribution gives at the same generator number when walked in the canonical order (most likely first).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/sampling.h"
#include "kernels/cuda/sampling.h"
#include "tests/support/gpu_test_support.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cuda {
namespace {

using testing_support::DeviceBuffer;

int32_t canonical_draw(const float* logits, int64_t vocab, const cpu::SamplingParams& params, uint64_t step) {
  std::vector<cpu::TokenProb> dist = cpu::sampling_distribution(logits, vocab, params);
  if (params.temperature == 0.0f) return dist[0].id;
  std::sort(dist.begin(), dist.end(), [](const auto& a, const auto& b) {
    return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
  });
  const double u = cpu::SamplingRng::for_step(params.seed, step).uniform();
  double cumulative = 0.0;
  for (const auto& t : dist) {
    cumulative += t.prob;
    if (u < cumulative) return t.id;
  }
  return dist.back().id;
}

TEST(CudaSampling, ArgmaxMatchesCpuWithTies) {
  TESSERA_REQUIRE_GPUS(1);
  const int64_t rows = 6, vocab = 49155;
  auto logits = testing_support::random_floats(static_cast<size_t>(rows * vocab), 1, -10.0f, 10.0f);
  logits[2 * vocab + 100] = 50.0f;
  logits[2 * vocab + 40000] = 50.0f;  // tie: the lower id wins
  logits[3 * vocab + vocab - 1] = 60.0f;
  for (int64_t i = 0; i < vocab; ++i) logits[4 * vocab + i] = -std::numeric_limits<float>::infinity();
  logits[4 * vocab + 7] = 0.0f;
  DeviceBuffer<float> d(logits);
  DeviceBuffer<int32_t> out(rows);
  argmax(d.get(), rows, vocab, out.get(), nullptr);
  const auto got = out.download();
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(got[r], cpu::argmax(logits.data() + r * vocab, vocab)) << "row " << r;
  EXPECT_EQ(got[2], 100);
}

TEST(CudaSampling, SeededDrawsFollowTheCpuDistribution) {
  TESSERA_REQUIRE_GPUS(1);
  const int64_t vocab = 1001;
  std::vector<cpu::SamplingParams> params;
  for (float temperature : {0.0f, 0.7f, 1.3f}) {
    for (int top_k : {0, 1, 40}) {
      for (float top_p : {1.0f, 0.9f, 0.3f}) {
        for (float min_p : {0.0f, 0.05f}) {
          params.push_back({temperature, top_k, top_p, min_p, 1234u + params.size()});
        }
      }
    }
  }
  const int64_t rows = static_cast<int64_t>(params.size());
  auto logits = testing_support::random_floats(static_cast<size_t>(rows * vocab), 7, -4.0f, 4.0f);
  for (int64_t r = 0; r < rows; r += 3) logits[r * vocab + 5] = -std::numeric_limits<float>::infinity();
  std::vector<uint64_t> steps(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) steps[r] = static_cast<uint64_t>(r * 17);
  DeviceBuffer<float> d(logits);
  DeviceBuffer<int32_t> out(rows);
  GpuSampler sampler;
  sampler.sample(d.get(), rows, vocab, params.data(), steps.data(), out.get(), nullptr);
  const auto got = out.download();
  for (int64_t r = 0; r < rows; ++r) {
    const auto& p = params[r];
    EXPECT_EQ(got[r], canonical_draw(logits.data() + r * vocab, vocab, p, steps[r]))
        << "row " << r << " temperature " << p.temperature << " top_k " << p.top_k << " top_p " << p.top_p
        << " min_p " << p.min_p;
  }
  // A replay draws the same tokens.
  DeviceBuffer<int32_t> again(rows);
  sampler.sample(d.get(), rows, vocab, params.data(), steps.data(), again.get(), nullptr);
  EXPECT_EQ(again.download(), got);
}

TEST(CudaSampling, ManyStepsCoverTheDistribution) {
  TESSERA_REQUIRE_GPUS(1);
  // One small distribution drawn at 4000 steps: every drawn token is in the CPU's support, and the
  // frequencies are within a few standard deviations of its probabilities.
  const int64_t vocab = 37, rows = 4000;
  const auto base = testing_support::random_floats(vocab, 9, -2.0f, 2.0f);
  const cpu::SamplingParams p{0.9f, 20, 0.95f, 0.0f, 99};
  std::vector<float> logits;
  for (int64_t r = 0; r < rows; ++r) logits.insert(logits.end(), base.begin(), base.end());
  std::vector<cpu::SamplingParams> params(static_cast<size_t>(rows), p);
  std::vector<uint64_t> steps(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) steps[r] = static_cast<uint64_t>(r);
  DeviceBuffer<float> d(logits);
  DeviceBuffer<int32_t> out(rows);
  GpuSampler sampler;
  sampler.sample(d.get(), rows, vocab, params.data(), steps.data(), out.get(), nullptr);
  const auto got = out.download();
  const auto dist = cpu::sampling_distribution(base.data(), vocab, p);
  std::vector<double> prob(vocab, 0.0);
  for (const auto& t : dist) prob[t.id] = t.prob;
  std::vector<int> counts(vocab, 0);
  for (int32_t id : got) {
    ASSERT_GT(prob[id], 0.0) << "token " << id << " is outside the CPU's support";
    ++counts[id];
  }
  for (int64_t i = 0; i < vocab; ++i) {
    const double expected = prob[i] * rows;
    EXPECT_NEAR(counts[i], expected, 5.0 * std::sqrt(expected + 1.0)) << "token " << i;
  }
}

TEST(CudaSampling, RejectsParametersOutOfRange) {
  TESSERA_REQUIRE_GPUS(1);
  DeviceBuffer<float> d(std::vector<float>(10, 0.0f));
  DeviceBuffer<int32_t> out(1);
  GpuSampler sampler;
  const uint64_t step = 0;
  cpu::SamplingParams p{1.0f, 0, 1.5f, 0.0f, 0};
  EXPECT_THROW(sampler.sample(d.get(), 1, 10, &p, &step, out.get(), nullptr), Error);
  p = {-1.0f, 0, 1.0f, 0.0f, 0};
  EXPECT_THROW(sampler.sample(d.get(), 1, 10, &p, &step, out.get(), nullptr), Error);
}

}  // namespace
}  // namespace tessera::kernels::cuda
