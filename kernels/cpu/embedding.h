#pragma once
// Token embedding lookup on the CPU, vocab-parallel: this rank owns rows [vocab_begin, vocab_end) of the
// model's [vocab_size, hidden] table. Tokens owned elsewhere produce zero rows, so that summing the outputs of
// every rank of the group (an all-reduce done by the caller) yields the full lookup, as in Megatron's
// VocabParallelEmbedding. With one rank, vocab_begin = 0 and vocab_end = vocab_size.
#include <cstdint>

namespace tessera::kernels::cpu {

// out[t, :] = table[ids[t] - vocab_begin, :] when vocab_begin <= ids[t] < vocab_end, else zeros.
//   ids:   [count] token ids of the whole model's vocabulary.
//   table: [vocab_end - vocab_begin, hidden] row-major, this rank's slice.
//   out:   [count, hidden] row-major, overwritten.
// Throws tessera::Error naming the position when an id is outside [0, vocab_size), or when the range is not
// 0 <= vocab_begin <= vocab_end <= vocab_size.
void embedding_lookup(const int32_t* ids, int64_t count, const float* table, int64_t vocab_begin, int64_t vocab_end,
                      int64_t vocab_size, int64_t hidden, float* out);

}  // namespace tessera::kernels::cpu
