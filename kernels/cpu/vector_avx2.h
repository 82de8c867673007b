#pragma once
// Reductions of 8-lane f32 vectors, shared by the AVX2 builds (block_gemv_avx2.cpp, block_gemv_int8_avx2.cpp,
// attention_head_avx2.cpp). Internal header: include it after immintrin.h and inside the file's target region
// (target_region.h), so that each file compiles its own AVX2 copy; internal linkage for that reason. The order of
// the adds is fixed: results that must be batch invariant may rely on it.

namespace tessera::kernels::cpu {
namespace {

// ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)).
inline float horizontal_sum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

inline float horizontal_max(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

}  // namespace
}  // namespace tessera::kernels::cpu
