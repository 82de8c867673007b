#pragma once
// Token sampling from f32 logits on the CPU, reproducible across machines and library versions: the random
// numbers come from our own xoshiro256** generator, seeded from (seed, step) with splitmix64 (step: see
// sample_token below), so a replay of the same request draws the same tokens.
//
// Pipeline (vLLM / Hugging Face order):  temperature == 0 → greedy argmax (ties → lowest id); otherwise
//   logits / temperature → top-k → softmax → top-p → min-p → renormalise → draw.
#include <cstdint>
#include <vector>

namespace tessera::kernels::cpu {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy; must be >= 0 and finite
  int top_k = 0;             // keep the k most likely tokens (ties: lower id first); <= 0 or >= vocab: off
  float top_p = 1.0f;        // nucleus: smallest most-likely set whose mass >= top_p (never empty); 1: off
  float min_p = 0.0f;        // drop tokens whose probability < min_p * the top probability; 0: off
  uint64_t seed = 0;
};

// xoshiro256** (Blackman & Vigna), its state filled by splitmix64. Small, fast, identical everywhere.
class SamplingRng {
 public:
  explicit SamplingRng(uint64_t seed);
  // The generator for one sampling step of a request: distinct steps of one seed get unrelated streams.
  static SamplingRng for_step(uint64_t seed, uint64_t step);

  uint64_t next();
  double uniform();  // in [0, 1), 53 random bits

 private:
  uint64_t s_[4];
};

struct TokenProb {
  int32_t id;
  double prob;
};

// The distribution sample_token draws from: the tokens that survive the filters, probabilities renormalised to
// sum to 1, in no particular order. Greedy (temperature 0) gives the argmax alone with probability 1.
//   logits: [vocab]. -inf marks a forbidden token.
// Throws tessera::Error on NaN or +inf logits, when every logit is -inf, or on parameters out of range
// (temperature < 0, top_p or min_p outside [0, 1]).
std::vector<TokenProb> sampling_distribution(const float* logits, int64_t vocab, const SamplingParams& params);

// Draws one token id from sampling_distribution(logits, vocab, params), taking exactly one uniform number from
// rng (none when greedy).
int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, SamplingRng& rng);

// Same, with the generator SamplingRng::for_step(params.seed, step). `step` is any number that names the draw
// within the request; the engine (runtime/engine/stage_executor.cpp) passes the position in the sequence of the token
// being sampled (prompt length + its index among the generated tokens), so a replay draws the same numbers.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params, uint64_t step);

// Index of the largest logit, the lowest index among ties. logits: [vocab], vocab >= 1, no NaN.
int32_t argmax(const float* logits, int64_t vocab);

}  // namespace tessera::kernels::cpu
