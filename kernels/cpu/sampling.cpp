#include "kernels/cpu/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/base/error.h"

namespace tessera::kernels::cpu {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void check_inputs(const float* logits, int64_t vocab, const SamplingParams& p) {
  TESSERA_CHECK(vocab >= 1 && vocab <= std::numeric_limits<int32_t>::max(), "sampling: bad vocabulary size ", vocab);
  TESSERA_CHECK(logits != nullptr, "sampling: null logits");
  TESSERA_CHECK(std::isfinite(p.temperature) && p.temperature >= 0.0f,
                "sampling: temperature must be finite and >= 0, got ", p.temperature);
  TESSERA_CHECK(p.top_p >= 0.0f && p.top_p <= 1.0f, "sampling: top_p must be in [0, 1], got ", p.top_p);
  TESSERA_CHECK(p.min_p >= 0.0f && p.min_p <= 1.0f, "sampling: min_p must be in [0, 1], got ", p.min_p);
  bool any_finite = false;
  for (int64_t i = 0; i < vocab; ++i) {
    TESSERA_CHECK(!std::isnan(logits[i]) && logits[i] != std::numeric_limits<float>::infinity(), "sampling: logit ", i,
                  " is ", logits[i]);
    any_finite = any_finite || std::isfinite(logits[i]);
  }
  TESSERA_CHECK(any_finite, "sampling: every one of the ", vocab, " logits is -inf");
}

// More likely first; ties broken by the lower id so that every filter is deterministic.
bool more_likely(const TokenProb& a, const TokenProb& b) {
  return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
}

// Keeps the shortest prefix (in more_likely order) whose mass reaches top_p, at least one token. Sorts only as
// much as needed: a nucleus is usually a few dozen tokens out of a vocabulary of tens of thousands.
void apply_top_p(std::vector<TokenProb>& c, double total, double top_p) {
  size_t sorted = std::min<size_t>(64, c.size());
  while (true) {
    std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(sorted), c.end(), more_likely);
    double mass = 0.0;
    for (size_t i = 0; i < sorted; ++i) {
      mass += c[i].prob / total;
      if (mass >= top_p) {
        c.resize(i + 1);
        return;
      }
    }
    if (sorted == c.size()) return;  // rounding: the whole set is the nucleus
    sorted = std::min(sorted * 4, c.size());
  }
}

}  // namespace

SamplingRng::SamplingRng(uint64_t seed) {
  uint64_t state = seed;
  for (auto& word : s_) word = splitmix64(state);
}

SamplingRng SamplingRng::for_step(uint64_t seed, uint64_t step) {
  // splitmix64's output is a bijection of its input, so distinct steps of one seed get distinct states.
  uint64_t a = seed;
  uint64_t b = splitmix64(a) ^ step;
  return SamplingRng(splitmix64(b));
}

uint64_t SamplingRng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double SamplingRng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

int32_t argmax(const float* logits, int64_t vocab) {
  TESSERA_CHECK(vocab >= 1 && logits != nullptr, "argmax: empty or null logits (vocab ", vocab, ")");
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i) {
    if (logits[i] > logits[best]) best = i;  // strict: the first of equal maxima wins
  }
  return static_cast<int32_t>(best);
}

std::vector<TokenProb> sampling_distribution(const float* logits, int64_t vocab, const SamplingParams& params) {
  check_inputs(logits, vocab, params);
  if (params.temperature == 0.0f) return {TokenProb{argmax(logits, vocab), 1.0}};

  // Candidates carry logit / temperature in `prob` until the softmax below.
  std::vector<TokenProb> c;
  c.reserve(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) {
    if (std::isinf(logits[i])) continue;  // -inf: forbidden
    c.push_back({static_cast<int32_t>(i), static_cast<double>(logits[i]) / static_cast<double>(params.temperature)});
  }
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < c.size()) {
    const auto kth = c.begin() + params.top_k;
    std::nth_element(c.begin(), kth - 1, c.end(), more_likely);
    c.erase(kth, c.end());
  }
  // Softmax in double; unnormalised weights exp(l - max) keep the top token at exactly 1.
  double max_logit = -std::numeric_limits<double>::infinity();
  for (const auto& t : c) max_logit = std::max(max_logit, t.prob);
  double total = 0.0;
  for (auto& t : c) {
    t.prob = std::exp(t.prob - max_logit);
    total += t.prob;
  }
  if (params.top_p < 1.0f) apply_top_p(c, total, static_cast<double>(params.top_p));
  if (params.min_p > 0.0f) {
    const auto threshold = static_cast<double>(params.min_p);  // times the top token's weight, exp(0) = 1
    std::erase_if(c, [&](const TokenProb& t) { return t.prob < threshold; });
  }
  double kept = 0.0;
  for (const auto& t : c) kept += t.prob;
  for (auto& t : c) t.prob /= kept;
  return c;
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, SamplingRng& rng) {
  const std::vector<TokenProb> dist = sampling_distribution(logits, vocab, params);
  if (params.temperature == 0.0f) return dist[0].id;
  const double u = rng.uniform();
  double cumulative = 0.0;
  for (const auto& t : dist) {
    cumulative += t.prob;
    if (u < cumulative) return t.id;
  }
  return dist.back().id;  // u within rounding of 1
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, uint64_t step) {
  SamplingRng rng = SamplingRng::for_step(params.seed, step);
  return sample_token(logits, vocab, params, rng);
}

}  // namespace tessera::kernels::cpu
