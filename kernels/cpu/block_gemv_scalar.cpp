// The portable build of block_gemv.h: each weight row dequantized (the reference decoder, every format) into a
// per-thread buffer, then dotted with every row of x. Also what the vector builds' callers fall back to for the
// formats without a vector decoder.
#include <span>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/block_gemv.h"

#if defined(__x86_64__) || defined(__i386__)
#define TESSERA_BLOCK_X86 1
#include <cpuid.h>
#else
#define TESSERA_BLOCK_X86 0
#endif

namespace tessera::kernels::cpu::packed {
namespace {

float dot_f32(const float* x, const float* w, int64_t k) {
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // four chains, as a compiler would not reassociate on its own
  int64_t i = 0;
  for (; i + 4 <= k; i += 4) {
    for (int j = 0; j < 4; ++j) acc[j] += x[i + j] * w[i + j];
  }
  for (; i < k; ++i) acc[0] += x[i] * w[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

}  // namespace

#if TESSERA_BLOCK_X86
bool cpu_has_f16c() {
  // CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c").
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
  }();
  return has;
}
#else
bool cpu_has_f16c() { return false; }
#endif

bool block_simd_supported(QuantFormat format) {
  switch (format) {
    case QuantFormat::kQ4_0:
    case QuantFormat::kQ4_1:
    case QuantFormat::kQ8_0:
    case QuantFormat::kQ4_K:
    case QuantFormat::kQ6_K: return true;
    default: return false;
  }
}

void block_gemv_scalar(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                       float* y, int64_t y_stride) {
  TESSERA_CHECK(m >= 1, "block_gemv: ", m, " rows of x");
  const int64_t row_bytes = quantized_bytes(format, k);
  thread_local std::vector<float> row;
  if (static_cast<int64_t>(row.size()) < k) row.resize(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize(format, std::span<const std::byte>(w + r * row_bytes, static_cast<size_t>(row_bytes)), k, row.data());
    for (int64_t i = 0; i < m; ++i) y[i * y_stride + r] += dot_f32(x + i * k, row.data(), k);
  }
}

}  // namespace tessera::kernels::cpu::packed
