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

namespace tessera::kernels::cpu::packed {
namespace {

constexpr int64_t kGroup = 4;  // rows of x per tile: 4 accumulators and their operands fit the 16 registers

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

// The quantized rows of x, in groups of kGroup rows (the last one smaller); in a group of G rows starting at row i0,
// block b of row i0 + i is entry e = i0 * blocks + b * G + i: its 32 quants at q + 32 e, its scale d (8 copies) at
// d + 8 e, and d times the sums of its quants over each 4 consecutive ones (the 8 lanes of an integer block dot) at
// s + 8 e.
struct QuantizedX {
  int8_t* q;
  float* d;
  float* s;
};

void quantize_x(const float* x, int64_t m, int64_t k, QuantizedX out) {
  const int64_t blocks = k / 32;
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256i unpack = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i0 = 0; i0 < m; i0 += kGroup) {
    const int64_t g = m - i0 < kGroup ? m - i0 : kGroup;
    for (int64_t i = 0; i < g; ++i) {
      const float* row = x + (i0 + i) * k;
      for (int64_t b = 0; b < blocks; ++b) {
        const float* v = row + b * 32;
        const __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16),
                     v3 = _mm256_loadu_ps(v + 24);
        const __m256 amax01 = _mm256_max_ps(_mm256_andnot_ps(sign_bit, v0), _mm256_andnot_ps(sign_bit, v1));
        const __m256 amax23 = _mm256_max_ps(_mm256_andnot_ps(sign_bit, v2), _mm256_andnot_ps(sign_bit, v3));
        const __m256 amax = _mm256_max_ps(amax01, amax23);
        const float d = horizontal_max(amax) / 127.0f;
        const __m256 id = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
        constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        const __m256i q0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), kRound));
        const __m256i q1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), kRound));
        const __m256i q2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), kRound));
        const __m256i q3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), kRound));
        // Packing works within 128-bit halves; the permute puts the 32 quants back in column order.
        const __m256i packed = _mm256_permutevar8x32_epi32(
            _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3)), unpack);
        const int64_t e = i0 * blocks + b * g + i;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q + 32 * e), packed);
        _mm256_storeu_ps(out.d + 8 * e, _mm256_set1_ps(d));
        const __m256i lane_sums =
            _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), packed), _mm256_set1_epi16(1));
        _mm256_storeu_ps(out.s + 8 * e, _mm256_mul_ps(_mm256_cvtepi32_ps(lane_sums), _mm256_set1_ps(d)));
      }
    }
  }
}

// Q4_0 / Q4_1 weights (32 nibbles: low nibbles are columns 0-15, high ones 16-31, as dequantize()).
template <class Block>
struct IntQ4 {
  static constexpr int kQuantOffset = Block::kHasBias ? 4 : 2;
  template <int M>
  static inline void accumulate(const uint8_t* block, float scale, float bias, const int8_t* q, const float* d,
                                const float* s, __m256* acc) {
    const __m128i qs = load_bytes16(block + kQuantOffset);
    const __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), _mm256_set1_epi8(0x0F));
    const __m256 dw = _mm256_set1_ps(scale);
    const __m256 mw = Block::kHasBias ? _mm256_set1_ps(bias) : _mm256_mul_ps(dw, _mm256_set1_ps(-8.0f));
    for (int i = 0; i < M; ++i) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * i));
      const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(w, xq), _mm256_set1_epi16(1));
      const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), _mm256_loadu_ps(d + 8 * i));
      acc[i] = _mm256_fmadd_ps(t, dw, acc[i]);
      acc[i] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(s + 8 * i), acc[i]);
    }
  }
};

// Q8_0 weights: |w| times x with w's signs (vpmaddubsw takes one unsigned operand).
struct IntQ8 {
  template <int M>
  static inline void accumulate(const uint8_t* block, float scale, float, const int8_t* q, const float* d,
                                const float*, __m256* acc) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
    const __m256i magnitude = _mm256_sign_epi8(w, w);
    const __m256 dw = _mm256_set1_ps(scale);
    for (int i = 0; i < M; ++i) {
      const __m256i xq = _mm256_sign_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * i)), w);
      const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, xq), _mm256_set1_epi16(1));
      const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), _mm256_loadu_ps(d + 8 * i));
      acc[i] = _mm256_fmadd_ps(t, dw, acc[i]);
    }
  }
};

// R weight rows times the M rows of one group of quantized x (entries of block b at b * M): y[i * y_stride + r] += dot.
template <class Block, class Int, int M, int R>
void tile(const uint8_t* w, int64_t row_bytes, int64_t blocks, QuantizedX xg, float* y, int64_t y_stride) {
  for (int64_t offset = 0; offset < R * row_bytes; offset += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(w + R * row_bytes + offset), _MM_HINT_T0);
  }
  __m256 acc[R][M];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) acc[r][i] = _mm256_setzero_ps();
  }
  alignas(32) float scale[R][kScaleRun], bias[R][kScaleRun];
  for (int64_t b0 = 0; b0 < blocks; b0 += kScaleRun) {
    const int n = blocks - b0 < kScaleRun ? static_cast<int>(blocks - b0) : kScaleRun;
    for (int r = 0; r < R; ++r) convert_scales<Block>(w + r * row_bytes + b0 * Block::kBytes, n, scale[r], bias[r]);
    for (int j = 0; j < n; ++j) {
      const int64_t e = (b0 + j) * M;
      for (int r = 0; r < R; ++r) {
        Int::template accumulate<M>(w + r * row_bytes + (b0 + j) * Block::kBytes, scale[r][j],
                                    Block::kHasBias ? bias[r][j] : 0.0f, xg.q + 32 * e, xg.d + 8 * e, xg.s + 8 * e,
                                    acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) y[i * y_stride + r] += horizontal_sum(acc[r][i]);
  }
}

template <class Block, class Int, int M>
void rows_m(const uint8_t* w, int64_t rows, int64_t row_bytes, int64_t blocks, QuantizedX xg, float* y,
            int64_t y_stride) {
  constexpr int R = M == 1 ? 4 : M == 2 ? 2 : 1;
  int64_t r = 0;
  for (; r + R <= rows; r += R) tile<Block, Int, M, R>(w + r * row_bytes, row_bytes, blocks, xg, y + r, y_stride);
  for (; r < rows; ++r) tile<Block, Int, M, 1>(w + r * row_bytes, row_bytes, blocks, xg, y + r, y_stride);
}

// Weight rows in tiles of ~128 KB (memory delivers each weight once), every group of x passing over each tile.
template <class Block, class Int>
void gemv_rows(const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y, int64_t y_stride,
               QuantizedX xq) {
  quantize_x(x, m, k, xq);
  const int64_t blocks = k / 32, row_bytes = blocks * Block::kBytes;
  const int64_t fit = 128 * 1024 / (row_bytes > 0 ? row_bytes : 1) / 4 * 4;
  const int64_t tile_rows = m == 1 ? rows : fit > 4 ? fit : 4;
  for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
    const int64_t nr = rows - r0 < tile_rows ? rows - r0 : tile_rows;
    const uint8_t* wt = w + r0 * row_bytes;
    for (int64_t i0 = 0; i0 < m; i0 += kGroup) {
      const int64_t e = i0 * blocks;
      const QuantizedX xg{xq.q + 32 * e, xq.d + 8 * e, xq.s + 8 * e};
      float* yg = y + i0 * y_stride + r0;
      switch (m - i0 < kGroup ? m - i0 : kGroup) {
        case 1: rows_m<Block, Int, 1>(wt, nr, row_bytes, blocks, xg, yg, y_stride); break;
        case 2: rows_m<Block, Int, 2>(wt, nr, row_bytes, blocks, xg, yg, y_stride); break;
        case 3: rows_m<Block, Int, 3>(wt, nr, row_bytes, blocks, xg, yg, y_stride); break;
        default: rows_m<Block, Int, 4>(wt, nr, row_bytes, blocks, xg, yg, y_stride); break;
      }
    }
  }
}

bool gemv_any(QuantFormat format, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y,
              int64_t y_stride, QuantizedX xq) {
  switch (format) {
    case QuantFormat::kQ4_0: gemv_rows<BlockQ4_0, IntQ4<BlockQ4_0>>(w, rows, k, x, m, y, y_stride, xq); return true;
    case QuantFormat::kQ4_1: gemv_rows<BlockQ4_1, IntQ4<BlockQ4_1>>(w, rows, k, x, m, y, y_stride, xq); return true;
    case QuantFormat::kQ8_0: gemv_rows<BlockQ8_0, IntQ8>(w, rows, k, x, m, y, y_stride, xq); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace tessera::kernels::cpu::packed

TESSERA_TARGET_REGION_END()

namespace tessera::kernels::cpu::packed {

void block_gemv_int8_avx2(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                          float* y, int64_t y_stride) {
  TESSERA_CHECK(m >= 1, "block_gemv_int8: ", m, " rows of x");
  (void)quantized_bytes(format, k);  // k must be whole blocks
  const int64_t entries = m * (k / 32);
  thread_local std::vector<float> scratch;  // the quantized rows of x (a library template: outside the region)
  const auto need = static_cast<size_t>(entries * (8 + 8 + 8));
  if (scratch.size() < need) scratch.resize(need);
  float* base = scratch.data();
  const QuantizedX xq{reinterpret_cast<int8_t*>(base + 16 * entries), base, base + 8 * entries};
  TESSERA_CHECK(gemv_any(format, reinterpret_cast<const uint8_t*>(w), rows, k, x, m, y, y_stride, xq),
                "block_gemv_int8_avx2: no int8 kernel for ", quant_format_name(format));
}

}  // namespace tessera::kernels::cpu::packed

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
