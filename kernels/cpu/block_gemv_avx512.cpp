// The AVX-512 build of block_gemv.h. The kernels are compiled under a target region (kernels/cpu/target_region.h) (so the shared
// decoders of block_decode_x86.h and the per-format templates all get AVX-512 code) that holds nothing but
// intrinsics and internal-linkage code: no library template is instantiated in it, so no AVX-512 copy of a shared
// inline function can reach the rest of the program. The public entry points below the region are plain code.
#include <cstdint>
#include <cstring>
#include <span>

#include "kernels/base/error.h"
#include "kernels/cpu/block_gemv.h"
#include "kernels/cpu/target_region.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

TESSERA_TARGET_REGION_BEGIN("avx512f,avx512bw,fma,f16c")
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which its own -Wuninitialized flags inside every
// inlined intrinsic: a known false positive, silenced for these kernels only (as in packed_dot.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/cpu/block_decode_x86.h"

namespace tessera::kernels::cpu::packed {
namespace {

// 16 quants to f32, then the block's affine map, as dequantize() computes it (see block_decode_x86.h on why a
// multiply-add the compiler may fuse still gives the reference's value).
template <bool kHasBias>
inline __m512 widen(__m128i q, float scale, float bias) {
  const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(scale));
  if constexpr (kHasBias) return _mm512_add_ps(v, _mm512_set1_ps(bias));
  return v;
}

struct Widened32 {
  __m512 lo, hi;  // elements 0-15 and 16-31 of a group
};

// A group's 32 values. 4-bit formats: the 16 values a nibble can stand for, computed once per group with the
// reference's operations, then looked up per element: the bytes widened to 32-bit lanes once (for Q4_0 / Q4_1
// both halves come from the same 16 bytes), shifted so the wanted nibble is lowest, and permuted — the permute
// reads only the low 4 bits of each lane, so no mask is needed.
template <class Block>
inline Widened32 widen_group(const Block& block, int g) {
  if constexpr (Block::kNibbles) {
    const NibbleGroup n = block.nibbles(g);
    const __m512 nibble_values = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 levels = _mm512_add_ps(nibble_values, _mm512_set1_ps(static_cast<float>(Block::kNibbleBase)));
    __m512 table = _mm512_mul_ps(levels, _mm512_set1_ps(n.scale));
    if constexpr (Block::kHasBias) table = _mm512_add_ps(table, _mm512_set1_ps(n.bias));
    const __m512i lo_bytes = _mm512_cvtepu8_epi32(n.lo);
    const __m512i hi_bytes = Block::kSharedNibbleBytes ? lo_bytes : _mm512_cvtepu8_epi32(n.hi);
    const __m512i lo = _mm512_srl_epi32(lo_bytes, _mm_cvtsi32_si128(n.shift_lo));
    const __m512i hi = _mm512_srl_epi32(hi_bytes, _mm_cvtsi32_si128(n.shift_hi));
    return {_mm512_permutexvar_ps(lo, table), _mm512_permutexvar_ps(hi, table)};
  } else {
    const Group32 q = block.group(g);
    return {widen<Block::kHasBias>(q.lo, q.scale_lo, q.bias_lo), widen<Block::kHasBias>(q.hi, q.scale_hi, q.bias_hi)};
  }
}

// acc[i] += the block's values times x's row i (rows of x are k apart; xb is the block's first column).
template <class Block, int M>
inline void accumulate(const Block& block, const float* xb, int64_t k, __m512* acc) {
  for (int g = 0; g < Block::kGroups; ++g) {
    const Widened32 wv = widen_group<Block>(block, g);
    for (int i = 0; i < M; ++i) {
      const float* xg = xb + i * k + g * 32;
      acc[i] = _mm512_fmadd_ps(wv.lo, _mm512_loadu_ps(xg), acc[i]);
      acc[i] = _mm512_fmadd_ps(wv.hi, _mm512_loadu_ps(xg + 16), acc[i]);
    }
  }
}

// R weight rows (row_bytes apart) times M rows of x (k apart): y[i * y_stride + r] += dot. The R rows are read
// side by side so that each block of x is loaded once for all of them and M * R accumulators hide the FMA latency.
template <class Block, int M, int R>
void gemv_tile(const uint8_t* w, int64_t row_bytes, int64_t k, const float* x, float* y, int64_t y_stride) {
  // The next tile's rows, requested now: the scale conversion that starts every run of blocks needs its bytes at
  // once, and would otherwise wait out the memory latency at the start of each tile. (A prefetch past the end of
  // the matrix is harmless: prefetches never fault.)
  for (int64_t offset = 0; offset < R * row_bytes; offset += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(w + R * row_bytes + offset), _MM_HINT_T0);
  }
  __m512 acc[R][M];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) acc[r][i] = _mm512_setzero_ps();
  }
  const int64_t blocks = k / Block::kElements;
  if constexpr (Block::kElements == 32) {
    // Small blocks: their scales converted a run of blocks at a time (convert_scales).
    alignas(32) float scale[R][kScaleRun], bias[R][kScaleRun];
    for (int64_t b0 = 0; b0 < blocks; b0 += kScaleRun) {
      const int n = blocks - b0 < kScaleRun ? static_cast<int>(blocks - b0) : kScaleRun;
      for (int r = 0; r < R; ++r) convert_scales<Block>(w + r * row_bytes + b0 * Block::kBytes, n, scale[r], bias[r]);
      for (int j = 0; j < n; ++j) {
        const int64_t b = b0 + j;
        for (int r = 0; r < R; ++r) {
          const Block block(w + r * row_bytes + b * Block::kBytes, scale[r][j], bias[r][j]);
          accumulate<Block, M>(block, x + b * Block::kElements, k, acc[r]);
        }
      }
    }
  } else {
    for (int64_t b = 0; b < blocks; ++b) {
      for (int r = 0; r < R; ++r) {
        accumulate<Block, M>(Block(w + r * row_bytes + b * Block::kBytes), x + b * Block::kElements, k, acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) y[i * y_stride + r] += _mm512_reduce_add_ps(acc[r][i]);
  }
}

template <class Block, int M>
void gemv_rows_m(const uint8_t* w, int64_t rows, int64_t k, const float* x, float* y, int64_t y_stride) {
  constexpr int R = M == 1 ? 4 : M <= 4 ? 2 : 1;  // 4 to 8 accumulators
  const int64_t row_bytes = k / Block::kElements * Block::kBytes;
  int64_t r = 0;
  for (; r + R <= rows; r += R) gemv_tile<Block, M, R>(w + r * row_bytes, row_bytes, k, x, y + r, y_stride);
  for (; r < rows; ++r) gemv_tile<Block, M, 1>(w + r * row_bytes, row_bytes, k, x, y + r, y_stride);
}

// Rows of x in groups of at most 8 (kept in L1) passing over tiles of weight rows (kept in L2). Only where each
// output's accumulator lives changes with m, never its arithmetic (block_gemv.h: batch invariance).
template <class Block>
void gemv_rows(const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y, int64_t y_stride) {
  const int64_t row_bytes = k / Block::kElements * Block::kBytes;
  const int64_t fit = 128 * 1024 / (row_bytes > 0 ? row_bytes : 1) / 8 * 8;  // no std::max in the target region
  const int64_t tile = m == 1 ? rows : fit > 8 ? fit : 8;
  for (int64_t r0 = 0; r0 < rows; r0 += tile) {
    const int64_t nr = rows - r0 < tile ? rows - r0 : tile;
    const uint8_t* wt = w + r0 * row_bytes;
    for (int64_t i0 = 0; i0 < m; i0 += 8) {
      const float* xi = x + i0 * k;
      float* yi = y + i0 * y_stride + r0;
      switch (m - i0 < 8 ? m - i0 : 8) {
        case 1: gemv_rows_m<Block, 1>(wt, nr, k, xi, yi, y_stride); break;
        case 2: gemv_rows_m<Block, 2>(wt, nr, k, xi, yi, y_stride); break;
        case 3: gemv_rows_m<Block, 3>(wt, nr, k, xi, yi, y_stride); break;
        case 4: gemv_rows_m<Block, 4>(wt, nr, k, xi, yi, y_stride); break;
        case 5: gemv_rows_m<Block, 5>(wt, nr, k, xi, yi, y_stride); break;
        case 6: gemv_rows_m<Block, 6>(wt, nr, k, xi, yi, y_stride); break;
        case 7: gemv_rows_m<Block, 7>(wt, nr, k, xi, yi, y_stride); break;
        default: gemv_rows_m<Block, 8>(wt, nr, k, xi, yi, y_stride); break;
      }
    }
  }
}

template <class Block>
void decode(const uint8_t* w, int64_t count, float* out) {
  for (int64_t b = 0; b < count / Block::kElements; ++b) {
    const Block block(w + b * Block::kBytes);
    for (int g = 0; g < Block::kGroups; ++g) {
      const Widened32 wv = widen_group<Block>(block, g);
      float* o = out + b * Block::kElements + g * 32;
      _mm512_storeu_ps(o, wv.lo);
      _mm512_storeu_ps(o + 16, wv.hi);
    }
  }
}

// Returns false for a format without a vector decoder.
bool gemv_any(QuantFormat format, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y,
              int64_t y_stride) {
  switch (format) {
    case QuantFormat::kQ4_0: gemv_rows<BlockQ4_0>(w, rows, k, x, m, y, y_stride); return true;
    case QuantFormat::kQ4_1: gemv_rows<BlockQ4_1>(w, rows, k, x, m, y, y_stride); return true;
    case QuantFormat::kQ8_0: gemv_rows<BlockQ8_0>(w, rows, k, x, m, y, y_stride); return true;
    case QuantFormat::kQ4_K: gemv_rows<BlockQ4_K>(w, rows, k, x, m, y, y_stride); return true;
    case QuantFormat::kQ6_K: gemv_rows<BlockQ6_K>(w, rows, k, x, m, y, y_stride); return true;
    default: return false;
  }
}

bool decode_any(QuantFormat format, const uint8_t* w, int64_t count, float* out) {
  switch (format) {
    case QuantFormat::kQ4_0: decode<BlockQ4_0>(w, count, out); return true;
    case QuantFormat::kQ4_1: decode<BlockQ4_1>(w, count, out); return true;
    case QuantFormat::kQ8_0: decode<BlockQ8_0>(w, count, out); return true;
    case QuantFormat::kQ4_K: decode<BlockQ4_K>(w, count, out); return true;
    case QuantFormat::kQ6_K: decode<BlockQ6_K>(w, count, out); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace tessera::kernels::cpu::packed

#pragma GCC diagnostic pop
TESSERA_TARGET_REGION_END()

namespace tessera::kernels::cpu::packed {

void block_gemv_avx512(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                       float* y, int64_t y_stride) {
  TESSERA_CHECK(m >= 1, "block_gemv: ", m, " rows of x");
  (void)quantized_bytes(format, k);  // k must be whole blocks
  TESSERA_CHECK(gemv_any(format, reinterpret_cast<const uint8_t*>(w), rows, k, x, m, y, y_stride),
                "block_gemv_avx512: no vector decoder for ", quant_format_name(format));
}

void block_decode_avx512(QuantFormat format, const std::byte* w, int64_t count, float* out) {
  (void)quantized_bytes(format, count);
  TESSERA_CHECK(decode_any(format, reinterpret_cast<const uint8_t*>(w), count, out),
                "block_decode_avx512: no vector decoder for ", quant_format_name(format));
}

}  // namespace tessera::kernels::cpu::packed

#else  // not x86: the callers never pick this build (cpu_has_avx512() is false); the portable code serves anyway

namespace tessera::kernels::cpu::packed {
void block_gemv_avx512(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                       float* y, int64_t y_stride) {
  block_gemv_scalar(format, w, rows, k, x, m, y, y_stride);
}
void block_decode_avx512(QuantFormat format, const std::byte* w, int64_t count, float* out) {
  dequantize(format, std::span<const std::byte>(w, static_cast<size_t>(quantized_bytes(format, count))), count, out);
}
}  // namespace tessera::kernels::cpu::packed

#endif
