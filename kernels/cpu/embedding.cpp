#include "kernels/cpu/embedding.h"

#include <algorithm>

#include "kernels/base/error.h"

namespace tessera::kernels::cpu {

void embedding_lookup(const int32_t* ids, int64_t count, const float* table, int64_t vocab_begin, int64_t vocab_end,
                      int64_t vocab_size, int64_t hidden, float* out) {
  TESSERA_CHECK(count >= 0 && hidden >= 0, "embedding_lookup: negative size (count=", count, ", hidden=", hidden, ")");
  TESSERA_CHECK(0 <= vocab_begin && vocab_begin <= vocab_end && vocab_end <= vocab_size,
                "embedding_lookup: bad vocab range [", vocab_begin, ", ", vocab_end, ") of a vocabulary of ",
                vocab_size);
  // Validate every id before writing anything: a bad id leaves out untouched rather than half written.
  for (int64_t t = 0; t < count; ++t) {
    TESSERA_CHECK(ids[t] >= 0 && ids[t] < vocab_size, "embedding_lookup: token id ", ids[t], " at position ", t,
                  " is outside the vocabulary [0, ", vocab_size, ")");
  }
  for (int64_t t = 0; t < count; ++t) {
    float* row = out + t * hidden;
    const int64_t id = ids[t];
    if (id < vocab_begin || id >= vocab_end) {
      std::fill(row, row + hidden, 0.0f);
      continue;
    }
    const float* src = table + (id - vocab_begin) * hidden;
    std::copy(src, src + hidden, row);
  }
}

}  // namespace tessera::kernels::cpu
