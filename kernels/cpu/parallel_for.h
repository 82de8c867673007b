#pragma once
// A small persistent thread pool for the CPU kernels that do not go through BLAS (the packed-weight matrix
// products). Decode calls a few hundred short kernels per token, so threads are started once and woken per call
// (a short spin, then a condition variable) rather than created per call.
//
// Threads: set_kernel_threads(n), else OpenBLAS's thread count (gemm_threads(): OPENBLAS_NUM_THREADS or
// set_gemm_threads), so one knob sizes both. A call from inside a parallel_for body runs serially (no nested
// parallelism, no deadlock).
#include <cstdint>
#include <functional>

namespace tessera::kernels::cpu {

// Runs body(begin, end) over [0, n) split into at most kernel_threads() contiguous chunks of at least min_chunk
// indices (the calling thread takes the first chunk). Returns after every chunk has finished; an exception thrown
// by a chunk is rethrown here (the first one, after all chunks have finished).
void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t begin, int64_t end)>& body);

// Thread count for later parallel_for calls in this process (n >= 1), and its current value.
void set_kernel_threads(int n);
int kernel_threads();

}  // namespace tessera::kernels::cpu
