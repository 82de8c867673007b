#pragma once
// Dense f32 matrix products on the CPU through OpenBLAS (cblas_sgemm, cblas_sgemv for one row).
// Weights use PyTorch's nn.Linear layout [out, in], so a linear layer is y = x · wᵀ (+ bias).
//
// Threads: OpenBLAS runs its own thread pool, sized by the environment variable OPENBLAS_NUM_THREADS
// (default: every core). Ranks that share a node should divide the cores among themselves, either through
// that variable or through set_gemm_threads(); the tests run with OPENBLAS_NUM_THREADS=1.
#include <cstdint>

namespace tessera::kernels::cpu {

// y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n] on every row when bias is not null).
//   x: [m, k] row-major, contiguous.   w: [n, k] row-major (PyTorch [out, in]).
//   y: [m, n] row-major, overwritten; must not alias x or w.   bias: [n] or nullptr.
// m, n or k may be 0 (k == 0 gives y = bias or 0). Throws tessera::Error on negative sizes, sizes that do
// not fit BLAS's int, or null pointers for non-empty operands.
void matmul_transposed(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
                       const float* bias = nullptr);

// y[m, n] += x[m, k] · w[n, k]ᵀ, same layouts as matmul_transposed (y is read and updated).
void matmul_transposed_accumulate(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k);

// OpenBLAS's thread count for every later call in this process (n >= 1), and its current value.
void set_gemm_threads(int n);
int gemm_threads();

}  // namespace tessera::kernels::cpu
