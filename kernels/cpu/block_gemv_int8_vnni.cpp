// The AVX-512 VNNI build of block_gemv_int8.h: block_gemv_int8_x86.h's kernel with vpdpbusd as its integer block dot.
// It keeps AVX2's 256-bit vectors (the VL forms of the instruction), so its tiles, summation order and results are
// those of block_gemv_int8_avx2.cpp; only the two-instruction dot (vpmaddubsw + vpmaddwd) becomes one.
#include <cstdint>

#include "kernels/base/error.h"
#include "kernels/cpu/block_gemv.h"
#include "kernels/cpu/block_gemv_int8.h"
#include "kernels/cpu/target_region.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

TESSERA_TARGET_REGION_BEGIN("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")
// GCC 12's AVX-512 intrinsics and -Wuninitialized: see block_gemv_avx512.cpp.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/cpu/block_decode_x86.h"
#include "kernels/cpu/vector_avx2.h"

namespace tessera::kernels::cpu::packed {
namespace {

// vpdpbusd into a zero accumulator: lane l = sum of u[4l + t] * s[4l + t], t < 4, exact in 32 bits.
struct VnniDot {
  static inline __m256i sum(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
};

}  // namespace
}  // namespace tessera::kernels::cpu::packed

#include "kernels/cpu/block_gemv_int8_x86.h"

#pragma GCC diagnostic pop
TESSERA_TARGET_REGION_END()

namespace tessera::kernels::cpu::packed {

bool cpu_has_avx512_vnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  return has;
}

void block_gemv_int8_vnni(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                          float* y, int64_t y_stride) {
  TESSERA_CHECK(m >= 1, "block_gemv_int8: ", m, " rows of x");
  (void)quantized_bytes(format, k);  // k must be whole blocks
  TESSERA_CHECK(gemv_any<VnniDot>(format, reinterpret_cast<const uint8_t*>(w), rows, k, x, m, y, y_stride,
                                  detail::int8_scratch(m, k / 32)),
                "block_gemv_int8_vnni: no int8 kernel for ", quant_format_name(format));
}

}  // namespace tessera::kernels::cpu::packed

#else  // not x86: never called (cpu_has_avx512_vnni() is false)

namespace tessera::kernels::cpu::packed {
bool cpu_has_avx512_vnni() { return false; }
void block_gemv_int8_vnni(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                          float* y, int64_t y_stride) {
  block_gemv_scalar(format, w, rows, k, x, m, y, y_stride);
}
}  // namespace tessera::kernels::cpu::packed

#endif
