#pragma once
// e^x in 8 f32 lanes, shared by the AVX2 builds that need one (attention_head_avx2.cpp's softmax, activation_avx2.cpp's
// SiLU). Internal header, as vector_avx2.h: include it after immintrin.h and inside the file's target region
// (target_region.h), so that each file compiles its own AVX2 copy; internal linkage for that reason.
#include <cstdint>

namespace tessera::kernels::cpu {
namespace {

// Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2, a degree-7 polynomial for e^r, then 2^n through the exponent bits.
// Within 2 ulp of std::exp where e^x is a normal float (tests/kernels/test_attention.cpp measures 1 ulp at worst over
// [-90, 0]); 0 below -87.33, where e^x is under 2^-126 (the softmax adds such a weight to a sum whose largest term is
// 1; SiLU divides by 1 + it). Inputs above 88 give e^88 (~1.65e38, finite) instead of overflowing: the softmax never
// passes them (score - max <= 0), and SiLU sets its lanes with -g > 88 to 0 itself.
inline __m256 exp8(__m256 x) {
  const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365478515625f), _CMP_LT_OQ);
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.3365478515625f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 in two parts: n * 0.693359375 is exact
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i two_to_n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(y, _mm256_castsi256_ps(two_to_n)));
}

// Lanes [0, n) set (n in 0..8): the mask of a loop's last, partial group for maskload / maskstore.
inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace
}  // namespace tessera::kernels::cpu
