#include "kernels/cpu/penalties.h"

#include <algorithm>
#include <vector>

#include "kernels/base/error.h"

namespace tessera::kernels::cpu {

void apply_penalties(float* logits, int64_t vocab, std::span<const int32_t> context, int64_t prompt_length,
                     const PenaltyParams& params) {
  if (!params.active() || context.empty()) return;
  TESSERA_CHECK(params.repetition > 0.0f, "repetition penalty must be > 0, got ", params.repetition);
  // Sorted copies keep the work proportional to the context, not the vocabulary, and the order of updates fixed.
  std::vector<int32_t> seen(context.begin(), context.end());
  for (const int32_t id : seen) {
    TESSERA_CHECK(id >= 0 && id < vocab, "penalties: token id ", id, " is outside the vocabulary of ", vocab);
  }
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  if (params.repetition != 1.0f) {
    for (const int32_t id : seen) {
      float& l = logits[id];
      l = l > 0.0f ? l / params.repetition : l * params.repetition;
    }
  }
  if (params.frequency == 0.0f && params.presence == 0.0f) return;
  const auto begin = static_cast<size_t>(std::clamp<int64_t>(prompt_length, 0, static_cast<int64_t>(context.size())));
  std::vector<int32_t> output(context.begin() + static_cast<std::ptrdiff_t>(begin), context.end());
  std::sort(output.begin(), output.end());
  for (size_t i = 0; i < output.size();) {
    size_t j = i;
    while (j < output.size() && output[j] == output[i]) ++j;
    logits[output[i]] -= params.frequency * static_cast<float>(j - i) + params.presence;
    i = j;
  }
}

}  // namespace tessera::kernels::cpu
