#pragma once
// Row-wise softmax and log-softmax on the CPU, f32 in and out, numerically stable (max subtracted first).
// -inf entries get probability 0; a row that is entirely -inf (or holds NaN) yields NaN, as in PyTorch.
#include <cstdint>

namespace tessera::kernels::cpu {

// y[r, :] = softmax(x[r, :]).   x, y: [rows, cols] row-major; y may be the same buffer as x.
void softmax(const float* x, float* y, int64_t rows, int64_t cols);

// y[r, :] = log_softmax(x[r, :]) = x - max - log(sum(exp(x - max))).   Same layouts; in place allowed.
void log_softmax(const float* x, float* y, int64_t rows, int64_t cols);

}  // namespace tessera::kernels::cpu
