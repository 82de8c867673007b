#include "kernels/cpu/packed_dot.h"

#include <bit>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TESSERA_PACKED_X86 1
#else
#define TESSERA_PACKED_X86 0
#endif

namespace tessera::kernels::cpu::packed {

float dot_bf16_scalar(const float* x, const uint16_t* w, int64_t k) {
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // four chains, as a compiler would not reassociate on its own
  int64_t i = 0;
  for (; i + 4 <= k; i += 4) {
    for (int j = 0; j < 4; ++j) acc[j] += x[i + j] * std::bit_cast<float>(static_cast<uint32_t>(w[i + j]) << 16);
  }
  for (; i < k; ++i) acc[0] += x[i] * std::bit_cast<float>(static_cast<uint32_t>(w[i]) << 16);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

float dot_q8_scalar(const float* x, const int8_t* q, const float* scale, int64_t k) {
  float total = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b) {
    float block = 0.0f;
    for (int i = 0; i < 32; ++i) block += x[b * 32 + i] * static_cast<float>(q[b * 32 + i]);
    total += scale[b] * block;
  }
  return total;
}

#if TESSERA_PACKED_X86

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return has;
}

namespace {

__attribute__((target("avx2,fma"))) inline float horizontal_sum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// 8 bf16 values widened to f32 (a bf16 is the high half of an f32).
__attribute__((target("avx2,fma"))) inline __m256 load_bf16x8(const uint16_t* w) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}

// 8 int8 values widened to f32.
__attribute__((target("avx2,fma"))) inline __m256 load_q8x8(const int8_t* q) {
  const __m128i raw = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(raw));
}

// One block of 32: sum x[i] * q[i] as a vector of 8 partial sums, in two independent chains.
__attribute__((target("avx2,fma"))) inline __m256 q8_block(const float* x, const int8_t* q) {
  __m256 a = _mm256_mul_ps(load_q8x8(q), _mm256_loadu_ps(x));
  __m256 b = _mm256_mul_ps(load_q8x8(q + 8), _mm256_loadu_ps(x + 8));
  a = _mm256_fmadd_ps(load_q8x8(q + 16), _mm256_loadu_ps(x + 16), a);
  b = _mm256_fmadd_ps(load_q8x8(q + 24), _mm256_loadu_ps(x + 24), b);
  return _mm256_add_ps(a, b);
}

}  // namespace

__attribute__((target("avx2,fma"))) float dot_bf16_avx2(const float* x, const uint16_t* w, int64_t k) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    a0 = _mm256_fmadd_ps(load_bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(load_bf16x8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(load_bf16x8(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(load_bf16x8(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= k; i += 8) a0 = _mm256_fmadd_ps(load_bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
  float total = horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < k; ++i) total += x[i] * std::bit_cast<float>(static_cast<uint32_t>(w[i]) << 16);
  return total;
}

__attribute__((target("avx2,fma"))) float dot_q8_avx2(const float* x, const int8_t* q, const float* scale, int64_t k) {
  // Two blocks per iteration into two accumulators, so the scale FMAs of neighbouring blocks overlap.
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  const int64_t blocks = k / 32;
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    a0 = _mm256_fmadd_ps(q8_block(x + b * 32, q + b * 32), _mm256_set1_ps(scale[b]), a0);
    a1 = _mm256_fmadd_ps(q8_block(x + b * 32 + 32, q + b * 32 + 32), _mm256_set1_ps(scale[b + 1]), a1);
  }
  if (b < blocks) a0 = _mm256_fmadd_ps(q8_block(x + b * 32, q + b * 32), _mm256_set1_ps(scale[b]), a0);
  return horizontal_sum(_mm256_add_ps(a0, a1));
}

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() ("__m512 __Y = __Y;"), which its own
// -Wuninitialized flags inside every inlined intrinsic: a known false positive, silenced for these kernels only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

// One block of 32 with 16-wide vectors: sum x[i] * q[i] as 16 partial sums.
__attribute__((target("avx512f,avx512bw"))) inline __m512 q8_block_avx512(const float* x, const int8_t* q) {
  const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q))));
  const __m512 w1 =
      _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16))));
  return _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), _mm512_mul_ps(w0, _mm512_loadu_ps(x)));
}

__attribute__((target("avx512f,avx512bw"))) inline __m512 load_bf16x16(const uint16_t* w) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

}  // namespace

__attribute__((target("avx512f,avx512bw"))) float dot_bf16_avx512(const float* x, const uint16_t* w, int64_t k) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    a0 = _mm512_fmadd_ps(load_bf16x16(w + i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(load_bf16x16(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
  }
  float total = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  for (; i < k; ++i) total += x[i] * std::bit_cast<float>(static_cast<uint32_t>(w[i]) << 16);
  return total;
}

__attribute__((target("avx512f,avx512bw"))) float dot_q8_avx512(const float* x, const int8_t* q, const float* scale,
                                                                int64_t k) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  const int64_t blocks = k / 32;
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    a0 = _mm512_fmadd_ps(q8_block_avx512(x + b * 32, q + b * 32), _mm512_set1_ps(scale[b]), a0);
    a1 = _mm512_fmadd_ps(q8_block_avx512(x + b * 32 + 32, q + b * 32 + 32), _mm512_set1_ps(scale[b + 1]), a1);
  }
  if (b < blocks) a0 = _mm512_fmadd_ps(q8_block_avx512(x + b * 32, q + b * 32), _mm512_set1_ps(scale[b]), a0);
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

#pragma GCC diagnostic pop

#else  // not x86: the scalar kernels serve every call

bool cpu_has_avx2_fma() { return false; }
bool cpu_has_avx512() { return false; }
float dot_bf16_avx512(const float* x, const uint16_t* w, int64_t k) { return dot_bf16_scalar(x, w, k); }
float dot_q8_avx512(const float* x, const int8_t* q, const float* scale, int64_t k) {
  return dot_q8_scalar(x, q, scale, k);
}
float dot_bf16_avx2(const float* x, const uint16_t* w, int64_t k) { return dot_bf16_scalar(x, w, k); }
float dot_q8_avx2(const float* x, const int8_t* q, const float* scale, int64_t k) {
  return dot_q8_scalar(x, q, scale, k);
}

#endif

}  // namespace tessera::kernels::cpu::packed
