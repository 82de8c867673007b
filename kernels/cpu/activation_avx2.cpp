// The AVX2+FMA build of SiLU-and-multiply (activation.h): 8 elements at a time, e^-g from the 8-lane exp that the
// softmax uses (vector_exp_avx2.h), the last partial group masked so that every element takes the same operations.
// Why its own build: the portable loop calls std::exp once per element, which made SiLU ~5% of a decode step's time
// on SmolLM2 (perf on Zen 4, 64 sequences; docs/PERFORMANCE.md, "SiLU with the vector exp"). Compiled under a target
// region (kernels/cpu/target_region.h) holding only intrinsics and internal-linkage code, as the block kernels.
#include "kernels/cpu/activation.h"

#include <cstdint>

#include "kernels/cpu/target_region.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

TESSERA_TARGET_REGION_BEGIN("avx2,fma")

#include "kernels/cpu/vector_exp_avx2.h"

namespace tessera::kernels::cpu::detail {
namespace {

// silu(g) * u = g / (1 + e^-g) * u, lane by lane, in the portable build's order of operations. Below g = -88, where
// exp8 stops at e^88, the quotient would be g * 6e-39 and grow with |g| instead of vanishing: those lanes are 0 (the
// true value is under 1e-36 in magnitude there; the portable build's e^-g overflows to inf and gives -0).
inline __m256 silu_times(__m256 g, __m256 u) {
  const __m256 e = exp8(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));  // -g, exactly
  const __m256 vanishes = _mm256_cmp_ps(g, _mm256_set1_ps(-88.0f), _CMP_LT_OQ);
  return _mm256_andnot_ps(vanishes, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u));
}

}  // namespace

void silu_mul_avx2(const float* gate, const float* up, float* out, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(out + i, silu_times(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  }
  if (i < count) {
    const __m256i lanes = first_lanes(count - i);
    _mm256_maskstore_ps(out + i, lanes,
                        silu_times(_mm256_maskload_ps(gate + i, lanes), _mm256_maskload_ps(up + i, lanes)));
  }
}

}  // namespace tessera::kernels::cpu::detail

TESSERA_TARGET_REGION_END()

#else  // not x86: never called (packed_isa() is kScalar there)

namespace tessera::kernels::cpu::detail {
void silu_mul_avx2(const float* gate, const float* up, float* out, int64_t count) {
  silu_mul_portable(gate, up, out, count);
}
}  // namespace tessera::kernels::cpu::detail

#endif
