#pragma once
// Token embedding lookup on the GPU, vocab-parallel like the CPU twin (kernels/cpu/embedding.h): this rank owns
// rows [vocab_begin, vocab_end) of the [vocab_size, hidden] table; tokens owned elsewhere give zero rows, so
// that the all-reduce of the group's outputs is the full lookup.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::kernels::cuda {

// out[t, :] = table[ids[t] - vocab_begin, :] when vocab_begin <= ids[t] < vocab_end, else zeros.
//   ids: [count] device. table: [vocab_end - vocab_begin, hidden] device. out: [count, hidden] device.
// A kernel cannot throw: an id outside [0, vocab_size) gives a zero row and, when `bad_position` (a device
// int the caller set to INT32_MAX) is given, the lowest such position is stored there for the caller to
// check. The range arguments are checked on the host (tessera::Error).
void embedding_lookup(const int32_t* ids, int64_t count, const __nv_bfloat16* table, int64_t vocab_begin,
                      int64_t vocab_end, int64_t vocab_size, int64_t hidden, __nv_bfloat16* out, cudaStream_t stream,
                      int32_t* bad_position = nullptr);
void embedding_lookup(const int32_t* ids, int64_t count, const float* table, int64_t vocab_begin, int64_t vocab_end,
                      int64_t vocab_size, int64_t hidden, float* out, cudaStream_t stream,
                      int32_t* bad_position = nullptr);
// bf16 table, f32 activations (the residual stream kept in f32).
void embedding_lookup(const int32_t* ids, int64_t count, const __nv_bfloat16* table, int64_t vocab_begin,
                      int64_t vocab_end, int64_t vocab_size, int64_t hidden, float* out, cudaStream_t stream,
                      int32_t* bad_position = nullptr);

}  // namespace tessera::kernels::cuda
