#pragma once
// The int8-activation kernels of block_gemv_int8.h, shared by its x86 builds and compiled in each one's target region:
// include this file inside TESSERA_TARGET_REGION_BEGIN/END, after block_decode_x86.h and vector_avx2.h, and call
// gemv_any<Dot>. Dot is the build's integer block dot product: `static __m256i sum(__m256i u, __m256i s)` returns
// 8 lanes, lane l = sum of u[4l + t] * s[4l + t] for t < 4 (u unsigned bytes, s signed bytes). The builds differ only
// in that instruction (AVX2: vpmaddubsw + vpmaddwd; AVX-512 VNNI: vpdpbusd), and the sums are exact integers in both
// (no pair of products here reaches vpmaddubsw's 16-bit saturation: |u| <= 128, |s| <= 127), so every build gives the
// same results bit for bit.
// Internal linkage only (an anonymous namespace): each build's copy stays its own.
#include <cstdint>
#include <cstring>

namespace tessera::kernels::cpu::packed {
namespace {

constexpr int64_t kGroup = 4;  // rows of x per tile: 4 accumulators and their operands fit the 16 registers
constexpr int64_t kPrefetchTiles = 4;

using detail::padded_blocks;

// The quantized rows of x. Quants in groups of kGroup rows (the last one smaller): in a group of G rows starting at
// row i0, block b of row i0 + i has its 32 quants at q + 32 (i0 * blocks + b * G + i), so that one tile reads the
// blocks of all its rows from one place. Fields: row i, block b at fields + 2 (i * padded_blocks + b): the block's
// scale d, then d times the sum of its quants (what a weight block's bias multiplies), as a pair that lines up with
// the pair (scale, bias) of a weight block (scale_products).
using QuantizedX = detail::Int8Scratch;

void quantize_x(const float* x, int64_t m, int64_t k, QuantizedX out) {
  const int64_t blocks = k / 32, stride = padded_blocks(blocks);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256i unpack = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i0 = 0; i0 < m; i0 += kGroup) {
    const int64_t g = m - i0 < kGroup ? m - i0 : kGroup;
    for (int64_t i = 0; i < g; ++i) {
      const float* row = x + (i0 + i) * k;
      float* fields = out.fields + 2 * (i0 + i) * stride;
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
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q + 32 * (i0 * blocks + b * g + i)), packed);
        const __m256i lane_sums =
            _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), packed), _mm256_set1_epi16(1));
        const __m128i half = _mm_add_epi32(_mm256_castsi256_si128(lane_sums), _mm256_extracti128_si256(lane_sums, 1));
        const __m128i quarter = _mm_add_epi32(half, _mm_unpackhi_epi64(half, half));
        const int sum = _mm_cvtsi128_si32(quarter) + _mm_extract_epi32(quarter, 1);  // |sum| <= 32 * 127: exact
        fields[2 * b] = d;
        fields[2 * b + 1] = d * static_cast<float>(sum);
      }
      for (int64_t b = blocks; b < stride; ++b) fields[2 * b] = fields[2 * b + 1] = 0.0f;
    }
  }
}

// The (scale, bias) pairs of weight blocks j .. j + 7 (those below n; zero beyond) as f32, in two vectors of four
// pairs: [d0, m0, d1, m1, d2, m2, d3, m3] and [d4, m4, ..., d7, m7]. One 32-bit load per block (Q4_1 keeps d and m
// side by side) and one conversion per four blocks. Q4_0's bias is -8 d (exact); Q8_0 has none (zero).
template <class Block>
inline void scale_pairs(const uint8_t* blocks, int j, int n, __m256* low, __m256* high) {
  const bool whole = j + 8 <= n;  // the usual case, without a test per block
  auto word = [&](int t) -> int {
    if (!whole && j + t >= n) return 0;
    int bits;
    std::memcpy(&bits, blocks + (j + t) * Block::kBytes + Block::kScaleOffset, sizeof bits);
    return bits;
  };
  const __m128i first = _mm_setr_epi32(word(0), word(1), word(2), word(3));
  const __m128i second = _mm_setr_epi32(word(4), word(5), word(6), word(7));
  __m256 pairs[2] = {_mm256_cvtph_ps(first), _mm256_cvtph_ps(second)};
  for (__m256& v : pairs) {
    if constexpr (Block::kBiasOffset == Block::kScaleOffset + 2) {
      // (d, m) as stored
    } else if constexpr (Block::kNibbleBase == -8) {
      v = _mm256_blend_ps(v, _mm256_mul_ps(_mm256_moveldup_ps(v), _mm256_set1_ps(-8.0f)), 0xAA);
    } else {
      v = _mm256_blend_ps(v, _mm256_setzero_ps(), 0xAA);  // the bytes after d are quants, not a bias
    }
  }
  *low = pairs[0];
  *high = pairs[1];
}

// One weight block's integer dot products with the quants of M rows of x (q: the block's entries of the group):
// sums[i] = 8 lanes of partial sums of qw * qx. Q4_0 / Q4_1: the weights are the 32 unsigned nibbles (low nibbles are
// columns 0-15, high ones 16-31, as dequantize()); Q8_0: signed bytes, so |w| times x with w's signs (vpmaddubsw
// takes one unsigned operand).
template <class Block, class Dot>
struct IntQ4 {
  static constexpr int kQuantOffset = Block::kHasBias ? 4 : 2;
  template <int M>
  static inline void dots(const uint8_t* block, const int8_t* q, __m256i* sums) {
    // The 16 quant bytes in both halves (a broadcast load: no shuffle), the upper half shifted by a nibble.
    const __m256i both = _mm256_broadcastsi128_si256(load_bytes16(block + kQuantOffset));
    const __m256i w = _mm256_and_si256(_mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                                       _mm256_set1_epi8(0x0F));
    for (int i = 0; i < M; ++i) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * i));
      sums[i] = Dot::sum(w, xq);
    }
  }
};

template <class Dot>
struct IntQ8 {
  template <int M>
  static inline void dots(const uint8_t* block, const int8_t* q, __m256i* sums) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
    const __m256i magnitude = _mm256_sign_epi8(w, w);
    for (int i = 0; i < M; ++i) {
      const __m256i xq = _mm256_sign_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * i)), w);
      sums[i] = Dot::sum(magnitude, xq);
    }
  }
};

// R weight rows times the M rows of one group of quantized x (quants of block b at q + 32 b M; fields of row i at
// fields + 2 i stride): y[i * y_stride + r] += dot. Per output, in this order whatever M, R and the tiling are:
//   acc (8 lanes) += float(integer block dot) * (dw dx)      for the blocks in column order, one FMA each
//   bias (8 lanes) += (dw dx, mw sx) pairs of 4 blocks        (mw sx = mw dx sum qx; Q4_0: mw = -8 dw; Q8_0: none)
//   y += horizontal_sum(acc + bias's odd lanes)
// The products dw dx of a run of blocks are formed 8 at a time, stored, and read back one per block as a broadcast
// load, so the inner loop is four integer operations, a conversion and one FMA per block and row of x.
template <class Block, class Int, int M, int R>
void tile(const uint8_t* w, int64_t row_bytes, int64_t blocks, const int8_t* q, const float* fields, int64_t stride,
          float* y, int64_t y_stride) {
  // The rows kPrefetchTiles tiles ahead, requested now (prefetches never fault): at batch 1 a tile takes about one
  // memory latency, and the scale conversion that starts it needs its bytes at once. (Measured on Zen 3 with
  // tessera_bench_block_gemv: 4 tiles beat 1 and 8, and no prefetch loses ~25% on the DRAM-resident LM head.)
  for (int64_t offset = 0; offset < R * row_bytes; offset += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(w + kPrefetchTiles * R * row_bytes + offset), _MM_HINT_T0);
  }
  __m256 acc[R][M], bias_acc[R][M];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) acc[r][i] = bias_acc[r][i] = _mm256_setzero_ps();
  }
  alignas(32) float product[R][M][2 * kScaleRun];  // (dw dx, mw sx) per block
  for (int64_t b0 = 0; b0 < blocks; b0 += kScaleRun) {
    const int n = blocks - b0 < kScaleRun ? static_cast<int>(blocks - b0) : kScaleRun;
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < n; j += 8) {
        __m256 low, high;
        scale_pairs<Block>(w + r * row_bytes + b0 * Block::kBytes, j, n, &low, &high);
        for (int i = 0; i < M; ++i) {
          const float* xf = fields + 2 * (i * stride + b0 + j);
          const __m256 p0 = _mm256_mul_ps(low, _mm256_loadu_ps(xf));
          const __m256 p1 = _mm256_mul_ps(high, _mm256_loadu_ps(xf + 8));
          _mm256_store_ps(product[r][i] + 2 * j, p0);
          _mm256_store_ps(product[r][i] + 2 * j + 8, p1);
          bias_acc[r][i] = _mm256_add_ps(bias_acc[r][i], _mm256_add_ps(p0, p1));
        }
      }
    }
    // The accumulators as locals of this loop, copied in and out: GCC 12 then keeps them in registers through the
    // loop (it still writes them to the stack each block, but never reads them back); accumulating into acc itself
    // measured 8-16% slower.
    __m256 run[R][M];
    for (int r = 0; r < R; ++r) {
      for (int i = 0; i < M; ++i) run[r][i] = acc[r][i];
    }
    for (int j = 0; j < n; ++j) {
      const int8_t* qj = q + 32 * (b0 + j) * M;
      for (int r = 0; r < R; ++r) {
        __m256i sums[M];
        Int::template dots<M>(w + r * row_bytes + (b0 + j) * Block::kBytes, qj, sums);
        for (int i = 0; i < M; ++i) {
          run[r][i] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[i]), _mm256_broadcast_ss(product[r][i] + 2 * j), run[r][i]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int i = 0; i < M; ++i) acc[r][i] = run[r][i];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) {
      const __m256 bias_lanes = _mm256_blend_ps(_mm256_setzero_ps(), bias_acc[r][i], 0xAA);
      y[i * y_stride + r] += horizontal_sum(_mm256_add_ps(acc[r][i], bias_lanes));
    }
  }
}

template <class Block, class Int, int M>
void rows_m(const uint8_t* w, int64_t rows, int64_t row_bytes, int64_t blocks, const int8_t* q, const float* fields,
            int64_t stride, float* y, int64_t y_stride) {
  constexpr int R = M == 1 ? 4 : M == 2 ? 2 : 1;
  int64_t r = 0;
  for (; r + R <= rows; r += R) {
    tile<Block, Int, M, R>(w + r * row_bytes, row_bytes, blocks, q, fields, stride, y + r, y_stride);
  }
  for (; r < rows; ++r) {
    tile<Block, Int, M, 1>(w + r * row_bytes, row_bytes, blocks, q, fields, stride, y + r, y_stride);
  }
}

// Weight rows in tiles of ~128 KB (memory delivers each weight once), every group of x passing over each tile.
template <class Block, class Int>
void gemv_rows(const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y, int64_t y_stride,
               QuantizedX xq) {
  quantize_x(x, m, k, xq);
  const int64_t blocks = k / 32, row_bytes = blocks * Block::kBytes, stride = padded_blocks(blocks);
  const int64_t tile_rows = m == 1 ? rows : l2_tile_rows(row_bytes, 4);
  for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
    const int64_t nr = rows - r0 < tile_rows ? rows - r0 : tile_rows;
    const uint8_t* wt = w + r0 * row_bytes;
    for (int64_t i0 = 0; i0 < m; i0 += kGroup) {
      const int8_t* q = xq.q + 32 * i0 * blocks;
      const float* fields = xq.fields + 2 * i0 * stride;
      float* yg = y + i0 * y_stride + r0;
      switch (m - i0 < kGroup ? m - i0 : kGroup) {
        case 1: rows_m<Block, Int, 1>(wt, nr, row_bytes, blocks, q, fields, stride, yg, y_stride); break;
        case 2: rows_m<Block, Int, 2>(wt, nr, row_bytes, blocks, q, fields, stride, yg, y_stride); break;
        case 3: rows_m<Block, Int, 3>(wt, nr, row_bytes, blocks, q, fields, stride, yg, y_stride); break;
        default: rows_m<Block, Int, 4>(wt, nr, row_bytes, blocks, q, fields, stride, yg, y_stride); break;
      }
    }
  }
}

template <class Dot>
bool gemv_any(QuantFormat format, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y,
              int64_t y_stride, QuantizedX xq) {
  switch (format) {
    case QuantFormat::kQ4_0: gemv_rows<BlockQ4_0, IntQ4<BlockQ4_0, Dot>>(w, rows, k, x, m, y, y_stride, xq); return true;
    case QuantFormat::kQ4_1: gemv_rows<BlockQ4_1, IntQ4<BlockQ4_1, Dot>>(w, rows, k, x, m, y, y_stride, xq); return true;
    case QuantFormat::kQ8_0: gemv_rows<BlockQ8_0, IntQ8<Dot>>(w, rows, k, x, m, y, y_stride, xq); return true;
    default: return false;
  }
}

}  // namespace
}  // namespace tessera::kernels::cpu::packed
