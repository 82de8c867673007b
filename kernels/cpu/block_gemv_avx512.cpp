// The AVX-512 build of block_gemv.h. The kernels are compiled under a target region (kernels/cpu/target_region.h) (so the shared
// decoders of block_decode_x86.h and the per-format templates all get AVX-512 code) that holds nothing but
// intrinsics and internal-linkage code: no library template is instantiated in it, so no AVX-512 copy of a shared
// inline function can reach the rest of the program. The public entry points below the region are plain code.
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

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

// --- Many rows of x (kBufferedRows or more): each tile of RW weight rows is widened once into a buffer, the very
// vectors accumulate() computes in registers, and a register-blocked microkernel (RW weight rows x up to 6 rows of x:
// 24 of the 32 registers accumulate, 10 loads per 24 FMAs) multiplies it with every row of x of a block of 32 to 64
// rows (kept in L2: buffered_row_block). Every output's accumulator takes the same FMAs of the same values in the
// same order as in gemv_tile (16 columns at a time, in column order), then the same reduction and one add onto y:
// the results are bit-identical (tests/kernels/batch_invariance.h); only the widening is no longer repeated for every
// group of 8 rows of x, which kept the direct path at 44-54 GFLOP/s at 16 and 64 rows on Zen 4, below the AVX2
// build's buffered 78-85 there.
inline constexpr int64_t kBufferedRows = 16;
inline constexpr int kBufferedWeightRows = 4, kBufferedXRows = 6;

// Rows of x per block: each block re-widens every weight row, so the larger the block the less widening (at 64 rows
// and in 512-token prefills, perf on Zen 4 put the widening at 6-9% of the time with 32-row blocks and 3-6% with
// 64-row ones: docs/PERFORMANCE.md, "Wider row blocks"), as long as the block stays in L2 beside the ~128 KB tile:
// at most 384 KB of x, within the 1-2 MB L2 of the AVX-512 server cores, never fewer than 32 rows (what it was for
// every k). Depends on k only, never on m: which rows share a block does not change any output's arithmetic.
constexpr int64_t buffered_row_block(int64_t k) {
  const int64_t fit = 384 * 1024 / (static_cast<int64_t>(sizeof(float)) * (k > 0 ? k : 1));
  return fit < 32 ? 32 : fit > 64 ? 64 : fit;
}

// rw rows of w widened into wbuf[(chunk * rw + r) * 16 + lane]: chunk c is columns [16 c, 16 c + 16) of row r.
template <class Block>
void widen_rows(const uint8_t* w, int64_t row_bytes, int64_t blocks, int rw, float* wbuf) {
  for (int r = 0; r < rw; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const Block block(w + r * row_bytes + b * Block::kBytes);
      for (int g = 0; g < Block::kGroups; ++g) {
        const Widened32 wv = widen_group<Block>(block, g);
        const int64_t chunk = (b * Block::kGroups + g) * 2;
        _mm512_store_ps(wbuf + (chunk * rw + r) * 16, wv.lo);
        _mm512_store_ps(wbuf + ((chunk + 1) * rw + r) * 16, wv.hi);
      }
    }
  }
}

// y[i * y_stride + r] += the RW widened rows of wbuf times M rows of x (k apart).
template <int RW, int M>
void buffered_micro(const float* wbuf, const float* x, int64_t k, float* y, int64_t y_stride) {
  __m512 acc[RW][M];
  for (int r = 0; r < RW; ++r) {
    for (int i = 0; i < M; ++i) acc[r][i] = _mm512_setzero_ps();
  }
  const int64_t chunks = k / 16;
  for (int64_t c = 0; c < chunks; ++c) {
    const float* ws = wbuf + c * RW * 16;
    __m512 wv[RW];
    for (int r = 0; r < RW; ++r) wv[r] = _mm512_load_ps(ws + r * 16);
    for (int i = 0; i < M; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + i * k + c * 16);
      for (int r = 0; r < RW; ++r) acc[r][i] = _mm512_fmadd_ps(wv[r], xv, acc[r][i]);
    }
  }
  for (int r = 0; r < RW; ++r) {
    for (int i = 0; i < M; ++i) y[i * y_stride + r] += _mm512_reduce_add_ps(acc[r][i]);
  }
}

template <int RW>
void buffered_rows(const float* wbuf, const float* x, int64_t k, int64_t rows_of_x, float* y, int64_t y_stride) {
  for (int64_t sub = 0; sub < rows_of_x; sub += kBufferedXRows) {
    const float* xs = x + sub * k;
    float* ys = y + sub * y_stride;
    switch (rows_of_x - sub < kBufferedXRows ? rows_of_x - sub : kBufferedXRows) {
      case 1: buffered_micro<RW, 1>(wbuf, xs, k, ys, y_stride); break;
      case 2: buffered_micro<RW, 2>(wbuf, xs, k, ys, y_stride); break;
      case 3: buffered_micro<RW, 3>(wbuf, xs, k, ys, y_stride); break;
      case 4: buffered_micro<RW, 4>(wbuf, xs, k, ys, y_stride); break;
      case 5: buffered_micro<RW, 5>(wbuf, xs, k, ys, y_stride); break;
      default: buffered_micro<RW, 6>(wbuf, xs, k, ys, y_stride); break;
    }
  }
}

// Weight rows in tiles of ~128 KB (L2) so that memory delivers each weight once per call; every block of
// buffered_row_block(k) rows of x then passes over the tile, re-widening its rows from L2.
// wbuf: kBufferedWeightRows * k floats, 64-byte aligned.
template <class Block>
void buffered_gemv_rows(const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y,
                        int64_t y_stride, float* wbuf) {
  const int64_t blocks = k / Block::kElements, row_bytes = blocks * Block::kBytes;
  const int64_t tile_rows = l2_tile_rows(row_bytes, kBufferedWeightRows), row_block = buffered_row_block(k);
  for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
    const int64_t r_end = rows - r0 < tile_rows ? rows : r0 + tile_rows;
    for (int64_t i0 = 0; i0 < m; i0 += row_block) {
      const int64_t n = m - i0 < row_block ? m - i0 : row_block;
      for (int64_t r = r0; r < r_end; r += kBufferedWeightRows) {
        const int rw = r_end - r < kBufferedWeightRows ? static_cast<int>(r_end - r) : kBufferedWeightRows;
        widen_rows<Block>(w + r * row_bytes, row_bytes, blocks, rw, wbuf);
        const float* xi = x + i0 * k;
        float* yi = y + i0 * y_stride + r;
        switch (rw) {
          case 1: buffered_rows<1>(wbuf, xi, k, n, yi, y_stride); break;
          case 2: buffered_rows<2>(wbuf, xi, k, n, yi, y_stride); break;
          case 3: buffered_rows<3>(wbuf, xi, k, n, yi, y_stride); break;
          default: buffered_rows<4>(wbuf, xi, k, n, yi, y_stride); break;
        }
      }
    }
  }
}

// Rows of x in groups of at most 8 (kept in L1) passing over tiles of weight rows (kept in L2); from kBufferedRows
// rows of x on, the buffered path above. Only where each output's accumulator lives and whether a weight vector comes
// from a register or from the buffer change with m, never its arithmetic (block_gemv.h: batch invariance).
template <class Block>
void gemv_rows(const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y, int64_t y_stride,
               float* wbuf) {
  if (m >= kBufferedRows) return buffered_gemv_rows<Block>(w, rows, k, x, m, y, y_stride, wbuf);
  const int64_t row_bytes = k / Block::kElements * Block::kBytes;
  const int64_t tile = m == 1 ? rows : l2_tile_rows(row_bytes, 8);
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
              int64_t y_stride, float* wbuf) {
  switch (format) {
    case QuantFormat::kQ4_0: gemv_rows<BlockQ4_0>(w, rows, k, x, m, y, y_stride, wbuf); return true;
    case QuantFormat::kQ4_1: gemv_rows<BlockQ4_1>(w, rows, k, x, m, y, y_stride, wbuf); return true;
    case QuantFormat::kQ8_0: gemv_rows<BlockQ8_0>(w, rows, k, x, m, y, y_stride, wbuf); return true;
    case QuantFormat::kQ4_K: gemv_rows<BlockQ4_K>(w, rows, k, x, m, y, y_stride, wbuf); return true;
    case QuantFormat::kQ6_K: gemv_rows<BlockQ6_K>(w, rows, k, x, m, y, y_stride, wbuf); return true;
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
  // The buffered path's widened weight rows (64-byte aligned: whole vectors); a library template, so outside the
  // target region.
  thread_local std::vector<float> scratch;
  float* wbuf = nullptr;
  if (m >= kBufferedRows) {
    const auto need = static_cast<size_t>(kBufferedWeightRows * k + 16);
    if (scratch.size() < need) scratch.resize(need);
    wbuf = scratch.data();
    wbuf += (64 - reinterpret_cast<uintptr_t>(wbuf) % 64) % 64 / sizeof(float);
  }
  TESSERA_CHECK(gemv_any(format, reinterpret_cast<const uint8_t*>(w), rows, k, x, m, y, y_stride, wbuf),
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
