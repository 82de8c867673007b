#pragma once
// Log-probabilities of the model's distribution over one row of logits, as the OpenAI API reports them: the raw
// model distribution (log_softmax of the logits, before temperature, penalties and filters), so a token's logprob
// does not depend on how it was sampled.
#include <cstdint>
#include <vector>

namespace tessera::kernels::cpu {

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

struct RowLogprobs {
  TokenLogprob chosen;              // the token asked about
  std::vector<TokenLogprob> top;    // the `top_k` most likely tokens, most likely first, ties to the lower id
};

// logits: [vocab], finite or -inf. top_k in [0, vocab]. Summation is in double over the row in index order, so the
// result is a function of the row alone (never of the batch it came in).
RowLogprobs row_logprobs(const float* logits, int64_t vocab, int32_t chosen, int top_k);

}  // namespace tessera::kernels::cpu
