#include "kernels/cpu/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/base/error.h"

namespace tessera::kernels::cpu {

RowLogprobs row_logprobs(const float* logits, int64_t vocab, int32_t chosen, int top_k) {
  TESSERA_CHECK(logits != nullptr && vocab >= 1, "row_logprobs: empty or null logits");
  TESSERA_CHECK(chosen >= 0 && chosen < vocab, "row_logprobs: token ", chosen, " outside the vocabulary of ", vocab);
  TESSERA_CHECK(top_k >= 0 && top_k <= vocab, "row_logprobs: top_k ", top_k, " outside [0, ", vocab, "]");
  double max_logit = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < vocab; ++i) max_logit = std::max(max_logit, static_cast<double>(logits[i]));
  double total = 0.0;
  for (int64_t i = 0; i < vocab; ++i) total += std::exp(static_cast<double>(logits[i]) - max_logit);
  const double log_total = std::log(total) + max_logit;
  const auto logprob = [&](int64_t i) { return static_cast<float>(static_cast<double>(logits[i]) - log_total); };

  RowLogprobs out;
  out.chosen = {chosen, logprob(chosen)};
  if (top_k > 0) {
    std::vector<int32_t> ids(static_cast<size_t>(vocab));
    for (int64_t i = 0; i < vocab; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    const auto more_likely = [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    };
    std::partial_sort(ids.begin(), ids.begin() + top_k, ids.end(), more_likely);
    out.top.reserve(static_cast<size_t>(top_k));
    for (int k = 0; k < top_k; ++k) out.top.push_back({ids[static_cast<size_t>(k)], logprob(ids[static_cast<size_t>(k)])});
  }
  return out;
}

}  // namespace tessera::kernels::cpu
