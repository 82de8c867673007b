// The AVX2 build of block_gemv_int8.h: integer block dot products on int8 activations. Compiled under a target region
// (kernels/cpu/target_region.h) holding only intrinsics and internal-linkage code, as block_gemv_avx2.cpp; the entry
// point below the region owns the scratch buffer.
#include "kernels/cpu/block_gemv_int8.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/block_gemv.h"
#include "kernels/cpu/target_region.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

TESSERA_TARGET_REGION_BEGIN("avx2,fma,f16c")

#include "kernels/cpu/block_decode_x86.h"
#include "kernels/cpu/vector_avx2.h"

namespace tessera::kernels::cpu::packed {
namespace {

// AVX2's integer block dot: vpmaddubsw (pairs of u8 x s8 products, into 16 bits) then vpmaddwd against ones.
struct MaddDot {
  static inline __m256i sum(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
};

}  // namespace
}  // namespace tessera::kernels::cpu::packed

#include "kernels/cpu/block_gemv_int8_x86.h"

TESSERA_TARGET_REGION_END()

namespace tessera::kernels::cpu::packed {

void block_gemv_int8_avx2(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                          float* y, int64_t y_stride) {
  TESSERA_CHECK(m >= 1, "block_gemv_int8: ", m, " rows of x");
  (void)quantized_bytes(format, k);  // k must be whole blocks
  TESSERA_CHECK(gemv_any<MaddDot>(format, reinterpret_cast<const uint8_t*>(w), rows, k, x, m, y, y_stride,
                                 detail::int8_scratch(m, k / 32)),
                "block_gemv_int8_avx2: no int8 kernel for ", quant_format_name(format));
}

}  // namespace tessera::kernels::cpu::packed

namespace tessera::kernels::cpu::packed::detail {

Int8Scratch int8_scratch(int64_t m, int64_t blocks) {
  const int64_t fields = m * padded_blocks(blocks);
  thread_local std::vector<float> scratch;  // a library template: outside the target regions
  const auto need = static_cast<size_t>(2 * fields + 8 * m * blocks);
  if (scratch.size() < need) scratch.resize(need);
  float* base = scratch.data();
  return {reinterpret_cast<int8_t*>(base + 2 * fields), base};
}

}  // namespace tessera::kernels::cpu::packed::detail

#else  // not x86: never called (the callers check the CPU); the f32 portable code serves

namespace tessera::kernels::cpu::packed {
void block_gemv_int8_avx2(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                          float* y, int64_t y_stride) {
  block_gemv_scalar(format, w, rows, k, x, m, y, y_stride);
}
}  // namespace tessera::kernels::cpu::packed

#endif

namespace tessera::kernels::cpu::packed {

bool block_int8_supported(QuantFormat format) {
  return format == QuantFormat::kQ4_0 || format == QuantFormat::kQ4_1 || format == QuantFormat::kQ8_0;
}

}  // namespace tessera::kernels::cpu::packed
