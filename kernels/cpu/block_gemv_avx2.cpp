// The AVX2+FMA build of block_gemv.h (16 vector registers of 8 floats). The kernels are compiled under a
// target region (kernels/cpu/target_region.h) (so the shared decoders of block_decode_x86.h and the per-format
// templates all get AVX2 code) that holds nothing but intrinsics and internal-linkage code: no library template is
// instantiated in it, so no AVX2 copy of a shared inline function can reach the rest of the program. The public
// entry points below the region are plain code (they own the scratch buffer).
//
// Lane layouts. AVX2 has no cheap way to spread 8 consecutive 4-bit or 8-bit quants over the 8 lanes of a vector
// (every widening is a shuffle, and Zen-class cores run one or two shuffles per cycle). So the 4-bit and 8-bit
// formats are read the other way round: a 32-bit lane takes 4 consecutive bytes of quants, and vector v of a panel is
// "field v of every lane" (nibble v for Q4_0 / Q4_1, byte v for Q8_0), isolated with a shift and a mask. Which
// column of the matrix each lane then holds is fixed by the format (PanelQ4::column, PanelQ8::column), and the rows of
// x are permuted the same way once per call (interleave_x), so that the dot product pairs every weight with its own x.
// (Measured on Zen 3 at batch 1: as fast as the shuffle-based decoder it replaced, not faster; dropping the FMA of the
// affine map sped it up by ~30%, so the FMA pipes bound both.) The weight values themselves are still dequantize()'s,
// bit for bit (the affine map is one FMA whose product is exact: see block_decode_x86.h).
//
// Batch invariance. Every output y[i, r] is one 8-lane accumulator that takes the panels' vectors in column order
// with one FMA each, then a fixed horizontal sum, then one add onto y: the same operations in the same order whatever
// m is, wherever row i sits in x, and however the rows of x and w are tiled around it (the tiling below only decides
// which accumulators live in registers together, and from kBufferedRows rows on whether a weight vector comes from a
// register or from the buffer it was stored to). Hence batch 1, 16 and 64 give bit-identical rows
// (tests/kernels/batch_invariance.h checks it).
#include <cstdint>
#include <cstring>
#include <span>
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

// --- Q4_0 and Q4_1: a panel is two blocks (64 columns), lanes 0-3 from the first, 4-7 from the second. Lane l holds
// bytes 4 (l % 4) .. + 3 of its block's 16 quant bytes; nibble v of it (v = 0..7, low nibble first) is byte
// 4 (l % 4) + v / 2, low nibble (element j) for even v, high (element j + 16) for odd v.
// (Applying the affine map to the block's sums instead, d sum x q + m sum x, saves an FMA per 8 weights at batch 1
// but needs a second register per row of x, which halves the rows a decoded weight serves: measured slower for
// batches, and it is no longer the dequantized weight times x.)
template <class Block>
struct PanelQ4 {
  static constexpr int64_t kColumns = 64, kBlocks = 2;
  static constexpr int kSlots = 8;
  static constexpr int kQuantOffset = Block::kHasBias ? 4 : 2;
  static constexpr int column(int v, int lane) { return (lane / 4) * 32 + (v % 2) * 16 + 4 * (lane % 4) + v / 2; }

  template <int V>
  static inline __m256 value(__m256i raw, __m256 d, __m256 m) {
    __m256i q = V == 0 ? raw : _mm256_srli_epi32(raw, 4 * V);
    if constexpr (V < 7) q = _mm256_and_si256(q, _mm256_set1_epi32(0x0F));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), d, m);  // d * q exact: one rounding, as dequantize()
  }

  // The panel starting at `block` (scale / bias: its blocks' converted fields) as 8 vectors of weights, f(v, values)
  // for v = 0..7 in order; `single`: the row's last, odd block (both halves read it; x is zero in the second).
  template <class F>
  static inline void widen(const uint8_t* block, bool single, const float* scale, const float* bias, F&& f) {
    const __m128i lo = load_bytes16(block + kQuantOffset);
    const __m128i hi = single ? lo : load_bytes16(block + Block::kBytes + kQuantOffset);
    const __m256i raw = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    const int second = single ? 0 : 1;
    const __m256 d = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_broadcast_ss(scale)),
                                          _mm_broadcast_ss(scale + second), 1);
    __m256 m;
    if constexpr (Block::kHasBias) {
      m = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_broadcast_ss(bias)), _mm_broadcast_ss(bias + second), 1);
    } else {
      m = _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));  // d * (q - 8) = d * q - 8 d, both exact
    }
    f(0, value<0>(raw, d, m));
    f(1, value<1>(raw, d, m));
    f(2, value<2>(raw, d, m));
    f(3, value<3>(raw, d, m));
    f(4, value<4>(raw, d, m));
    f(5, value<5>(raw, d, m));
    f(6, value<6>(raw, d, m));
    f(7, value<7>(raw, d, m));
  }
};

// --- Q8_0: a panel is one block (32 columns); lane l holds quants 4 l .. 4 l + 3, vector v their byte v.
struct PanelQ8 {
  static constexpr int64_t kColumns = 32, kBlocks = 1;
  static constexpr int kSlots = 4;
  static constexpr int column(int v, int lane) { return 4 * lane + v; }

  template <int V>
  static inline __m256 value(__m256i raw, __m256 d) {
    const __m256i shifted = V == 3 ? raw : _mm256_slli_epi32(raw, 24 - 8 * V);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srai_epi32(shifted, 24)), d);  // q * d, as dequantize()
  }

  template <class F>
  static inline void widen(const uint8_t* block, bool, const float* scale, const float*, F&& f) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
    const __m256 d = _mm256_broadcast_ss(scale);
    f(0, value<0>(raw, d));
    f(1, value<1>(raw, d));
    f(2, value<2>(raw, d));
    f(3, value<3>(raw, d));
  }
};

// Columns of x a panel layout puts in lane `lane` of vector v, for a whole panel.
template <class Panel>
struct PanelColumns {
  int of[Panel::kColumns];
  constexpr PanelColumns() : of() {
    for (int v = 0; v < Panel::kColumns / 8; ++v) {
      for (int lane = 0; lane < 8; ++lane) of[8 * v + lane] = Panel::column(v, lane);
    }
  }
};

// The rows of x as the tiles read them: in groups of `group` rows (the last one smaller), each group one block of
// memory; within a group of G rows, slot q of panel P of row i (8 floats) at ((P * kSlots + q) * G + i) * 8, so that
// one base pointer and compile-time offsets reach all the rows of a tile. Slot v of a panel holds columns
// columns[8 v .. 8 v + 7] of it (identity when null; 0 for the padding of an odd last block).
template <int64_t kColumns, int kSlots>
void interleave_x(const float* x, int64_t m, int64_t k, int64_t panels, int64_t group, const int* columns,
                  float* xp) {
  constexpr int kVectors = static_cast<int>(kColumns / 8);
  const int64_t row_floats = panels * kSlots * 8;
  for (int64_t i0 = 0; i0 < m; i0 += group) {
    const int64_t g = m - i0 < group ? m - i0 : group;
    float* out = xp + i0 * row_floats;
    for (int64_t i = 0; i < g; ++i) {
      const float* row = x + (i0 + i) * k;
      for (int64_t panel = 0; panel < panels; ++panel) {
        float* base = out + panel * kSlots * g * 8;
        for (int v = 0; v < kVectors; ++v) {
          for (int lane = 0; lane < 8; ++lane) {
            const int64_t c = panel * kColumns + (columns != nullptr ? columns[8 * v + lane] : 8 * v + lane);
            base[(v * g + i) * 8 + lane] = c < k ? row[c] : 0.0f;
          }
        }
      }
    }
  }
}

// R weight rows (row_bytes apart) times the M rows of one group of xp (interleave_x): y[i * y_stride + r] += dot.
template <class Block, class Panel, int M, int R>
void panel_tile(const uint8_t* w, int64_t row_bytes, int64_t blocks, const float* xp, float* y, int64_t y_stride) {
  // The next tile's rows, requested now: the scale conversion that starts every run of blocks needs its bytes at
  // once, and would otherwise wait out the memory latency at the start of each tile. (Prefetches never fault.)
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
    for (int j = 0; j < n; j += static_cast<int>(Panel::kBlocks)) {
      const float* xj = xp + (b0 + j) / Panel::kBlocks * Panel::kSlots * M * 8;
      const bool single = j + 1 >= n && Panel::kBlocks == 2;
      for (int r = 0; r < R; ++r) {
        Panel::widen(w + r * row_bytes + (b0 + j) * Block::kBytes, single, scale[r] + j, bias[r] + j,
                     [&](int v, __m256 values) {
                       for (int i = 0; i < M; ++i) {
                         acc[r][i] = _mm256_fmadd_ps(values, _mm256_loadu_ps(xj + (v * M + i) * 8), acc[r][i]);
                       }
                     });
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) y[i * y_stride + r] += horizontal_sum(acc[r][i]);
  }
}

// --- Q4_K and Q6_K (256-element super-blocks): the shared decoders' groups, in column order (no permutation).
template <bool kHasBias>
inline __m256 widen8(__m128i q, float scale, float bias) {
  const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_set1_ps(scale));
  if constexpr (kHasBias) return _mm256_add_ps(v, _mm256_set1_ps(bias));
  return v;
}

template <class Block>
inline void widen_group(Group32 q, __m256* out) {
  if constexpr (Block::kNibbleBase != 0) {  // q + base in bytes: exact, as dequantize()'s integer (q - 8)
    q.lo = _mm_add_epi8(q.lo, _mm_set1_epi8(Block::kNibbleBase));
    q.hi = _mm_add_epi8(q.hi, _mm_set1_epi8(Block::kNibbleBase));
  }
  out[0] = widen8<Block::kHasBias>(q.lo, q.scale_lo, q.bias_lo);
  out[1] = widen8<Block::kHasBias>(_mm_srli_si128(q.lo, 8), q.scale_lo, q.bias_lo);
  out[2] = widen8<Block::kHasBias>(q.hi, q.scale_hi, q.bias_hi);
  out[3] = widen8<Block::kHasBias>(_mm_srli_si128(q.hi, 8), q.scale_hi, q.bias_hi);
}

template <class Block, int M, int R>
void super_tile(const uint8_t* w, int64_t row_bytes, int64_t blocks, const float* x, float* y, int64_t y_stride) {
  for (int64_t offset = 0; offset < R * row_bytes; offset += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(w + R * row_bytes + offset), _MM_HINT_T0);
  }
  __m256 acc[R][M];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) acc[r][i] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; ++b) {
    for (int r = 0; r < R; ++r) {
      const Block block(w + r * row_bytes + b * Block::kBytes);
      for (int g = 0; g < Block::kGroups; ++g) {
        __m256 wv[4];
        widen_group<Block>(block.group(g), wv);
        const float* xg = x + (b * Block::kElements + g * 32) * M;
        for (int v = 0; v < 4; ++v) {
          for (int i = 0; i < M; ++i) {
            acc[r][i] = _mm256_fmadd_ps(wv[v], _mm256_loadu_ps(xg + (v * M + i) * 8), acc[r][i]);
          }
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) y[i * y_stride + r] += horizontal_sum(acc[r][i]);
  }
}

// --- Many rows of x (kBufferedRows or more): each tile of RW weight rows is widened once into a buffer — the very
// vectors the tiles above compute in registers, slot by slot — and a register-blocked microkernel (RW weight rows x up
// to 4 rows of x: 12 accumulators, 7 loads per 12 FMAs) multiplies it with every row of x of a block of 32 (kept in
// L2). Every output's accumulator takes the same FMAs of the same values in the same order as in panel_tile /
// super_tile, then the same horizontal sum: the results are bit-identical (tests/kernels/batch_invariance.h), only
// the decoding is no longer repeated for every group of 8 rows of x.
inline constexpr int64_t kBufferedRows = 16, kBufferedRowBlock = 32;
inline constexpr int kBufferedWeightRows = 3;

// Rows of w widened into wbuf[(slot * rw + r) * 8 + lane], slots in the order the tiles consume them.
template <class Block, class Panel>
void widen_panel_rows(const uint8_t* w, int64_t row_bytes, int64_t blocks, int rw, float* wbuf) {
  alignas(32) float scale[kScaleRun], bias[kScaleRun];
  for (int r = 0; r < rw; ++r) {
    const uint8_t* row = w + r * row_bytes;
    for (int64_t b0 = 0; b0 < blocks; b0 += kScaleRun) {
      const int n = blocks - b0 < kScaleRun ? static_cast<int>(blocks - b0) : kScaleRun;
      convert_scales<Block>(row + b0 * Block::kBytes, n, scale, bias);
      for (int j = 0; j < n; j += static_cast<int>(Panel::kBlocks)) {
        const int64_t slot0 = (b0 + j) / Panel::kBlocks * Panel::kSlots;
        const bool single = j + 1 >= n && Panel::kBlocks == 2;
        Panel::widen(row + (b0 + j) * Block::kBytes, single, scale + j, bias + j, [&](int v, __m256 values) {
          _mm256_store_ps(wbuf + ((slot0 + v) * rw + r) * 8, values);
        });
      }
    }
  }
}

template <class Block>
void widen_super_rows(const uint8_t* w, int64_t row_bytes, int64_t blocks, int rw, float* wbuf) {
  for (int r = 0; r < rw; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const Block block(w + r * row_bytes + b * Block::kBytes);
      for (int g = 0; g < Block::kGroups; ++g) {
        __m256 wv[4];
        widen_group<Block>(block.group(g), wv);
        for (int v = 0; v < 4; ++v) _mm256_store_ps(wbuf + ((b * 32 + g * 4 + v) * rw + r) * 8, wv[v]);
      }
    }
  }
}

// y[i * y_stride + r] += the RW widened rows of wbuf times M rows of x (slot s of row i at xg + (s * G + i) * 8).
template <int RW, int M>
void buffered_micro(const float* wbuf, const float* xg, int64_t group, int64_t slots, float* y, int64_t y_stride) {
  __m256 acc[RW][M];
  for (int r = 0; r < RW; ++r) {
    for (int i = 0; i < M; ++i) acc[r][i] = _mm256_setzero_ps();
  }
  for (int64_t s = 0; s < slots; ++s) {
    const float* xs = xg + s * group * 8;
    const float* ws = wbuf + s * RW * 8;
    __m256 wv[RW];
    for (int r = 0; r < RW; ++r) wv[r] = _mm256_load_ps(ws + r * 8);
    for (int i = 0; i < M; ++i) {
      const __m256 xv = _mm256_loadu_ps(xs + i * 8);
      for (int r = 0; r < RW; ++r) acc[r][i] = _mm256_fmadd_ps(wv[r], xv, acc[r][i]);
    }
  }
  for (int r = 0; r < RW; ++r) {
    for (int i = 0; i < M; ++i) y[i * y_stride + r] += horizontal_sum(acc[r][i]);
  }
}

template <int RW>
void buffered_rows(const float* wbuf, const float* xg, int64_t group, int64_t rows_of_x, int64_t slots, float* y,
                   int64_t y_stride) {
  for (int64_t sub = 0; sub < rows_of_x; sub += 4) {
    const float* xs = xg + sub * 8;
    float* ys = y + sub * y_stride;
    switch (rows_of_x - sub < 4 ? rows_of_x - sub : 4) {
      case 1: buffered_micro<RW, 1>(wbuf, xs, group, slots, ys, y_stride); break;
      case 2: buffered_micro<RW, 2>(wbuf, xs, group, slots, ys, y_stride); break;
      case 3: buffered_micro<RW, 3>(wbuf, xs, group, slots, ys, y_stride); break;
      default: buffered_micro<RW, 4>(wbuf, xs, group, slots, ys, y_stride); break;
    }
  }
}

// The tile kernels of one format behind one interface: the layout of x (prepare, row_floats), the rows of x per
// group (kGroup: what fits the 16 registers) and the tile of R weight rows times M rows of x.
template <class Block, class Panel>
struct PanelKernel {
  using BlockType = Block;
  static constexpr int64_t kColumns = Panel::kColumns, kGroup = 8;
  static int64_t panels(int64_t k) { return (k + kColumns - 1) / kColumns; }
  static int64_t row_floats(int64_t k) { return panels(k) * Panel::kSlots * 8; }
  static void prepare(const float* x, int64_t m, int64_t k, int64_t group, float* xp) {
    static constexpr PanelColumns<Panel> columns;
    interleave_x<kColumns, Panel::kSlots>(x, m, k, panels(k), group, columns.of, xp);
  }
  template <int M, int R>
  static void tile(const uint8_t* w, int64_t row_bytes, int64_t blocks, const float* xp, float* y, int64_t y_stride) {
    panel_tile<Block, Panel, M, R>(w, row_bytes, blocks, xp, y, y_stride);
  }
  static void widen_rows(const uint8_t* w, int64_t row_bytes, int64_t blocks, int rw, float* wbuf) {
    widen_panel_rows<Block, Panel>(w, row_bytes, blocks, rw, wbuf);
  }
};

template <class Block>
struct SuperKernel {
  using BlockType = Block;
  static constexpr int64_t kColumns = Block::kElements, kGroup = 8;
  static int64_t row_floats(int64_t k) { return k; }
  static void prepare(const float* x, int64_t m, int64_t k, int64_t group, float* xp) {
    interleave_x<kColumns, static_cast<int>(kColumns / 8)>(x, m, k, k / kColumns, group, nullptr, xp);
  }
  template <int M, int R>
  static void tile(const uint8_t* w, int64_t row_bytes, int64_t blocks, const float* x, float* y, int64_t y_stride) {
    super_tile<Block, M, R>(w, row_bytes, blocks, x, y, y_stride);
  }
  static void widen_rows(const uint8_t* w, int64_t row_bytes, int64_t blocks, int rw, float* wbuf) {
    widen_super_rows<Block>(w, row_bytes, blocks, rw, wbuf);
  }
};

// All `rows` rows of w against M rows of xp: tiles of R weight rows (R * M accumulators: enough independent FMA
// chains to hide the latency when M is small), then single rows.
template <class Kernel, int M>
void rows_m(const uint8_t* w, int64_t rows, int64_t row_bytes, int64_t blocks, const float* xp, float* y,
            int64_t y_stride) {
  constexpr int R = M == 1 ? 4 : M <= 4 ? 2 : 1;
  int64_t r = 0;
  for (; r + R <= rows; r += R) Kernel::template tile<M, R>(w + r * row_bytes, row_bytes, blocks, xp, y + r, y_stride);
  for (; r < rows; ++r) Kernel::template tile<M, 1>(w + r * row_bytes, row_bytes, blocks, xp, y + r, y_stride);
}

// The loop nest: weight rows in tiles that stay in L2 while every group of rows of x (kept in L1) passes over them.
// Only where each output's accumulator lives changes with m, never its arithmetic.
template <class Kernel>
void gemv_rows(const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y, int64_t y_stride,
               float* scratch) {
  using Block = typename Kernel::BlockType;
  const int64_t row_floats = Kernel::row_floats(k);
  // Groups of x within ~24 KB of L1; always whole kGroup's or the rows that are left.
  const bool fits = Kernel::kGroup * row_floats * static_cast<int64_t>(sizeof(float)) <= 24 * 1024;
  const int64_t group = fits ? Kernel::kGroup : 4;
  Kernel::prepare(x, m, k, group, scratch);
  const int64_t blocks = k / Block::kElements, row_bytes = blocks * Block::kBytes;
  if (m >= kBufferedRows) {
    float* wbuf = scratch + m * row_floats;  // kBufferedWeightRows * row_floats floats, 32-byte aligned
    const int64_t slots = row_floats / 8;
    // Weight rows in tiles of ~128 KB (L2) so that memory delivers each weight once per call; every block of 32 rows
    // of x then passes over the tile, re-widening its rows from L2.
    const int64_t tile_rows = l2_tile_rows(row_bytes, kBufferedWeightRows);
    for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
      const int64_t r_end = rows - r0 < tile_rows ? rows : r0 + tile_rows;
      for (int64_t i0 = 0; i0 < m; i0 += kBufferedRowBlock) {
        const int64_t i1 = m - i0 < kBufferedRowBlock ? m : i0 + kBufferedRowBlock;
        for (int64_t r = r0; r < r_end; r += kBufferedWeightRows) {
          const int rw = r_end - r < kBufferedWeightRows ? static_cast<int>(r_end - r) : kBufferedWeightRows;
          Kernel::widen_rows(w + r * row_bytes, row_bytes, blocks, rw, wbuf);
          for (int64_t g0 = i0; g0 < i1; g0 += group) {
            const int64_t g = m - g0 < group ? m - g0 : group;
            const float* xg = scratch + g0 * row_floats;
            float* yg = y + g0 * y_stride + r;
            if (rw == 3) buffered_rows<3>(wbuf, xg, g, g, slots, yg, y_stride);
            else if (rw == 2) buffered_rows<2>(wbuf, xg, g, g, slots, yg, y_stride);
            else buffered_rows<1>(wbuf, xg, g, g, slots, yg, y_stride);
          }
        }
      }
    }
    return;
  }
  const int64_t tile = m == 1 ? rows : l2_tile_rows(row_bytes, 8);
  for (int64_t r0 = 0; r0 < rows; r0 += tile) {
    const int64_t nr = rows - r0 < tile ? rows - r0 : tile;
    const uint8_t* wt = w + r0 * row_bytes;
    for (int64_t i0 = 0; i0 < m; i0 += group) {
      const float* xi = scratch + i0 * row_floats;
      float* yi = y + i0 * y_stride + r0;
      switch (m - i0 < group ? m - i0 : group) {
        case 1: rows_m<Kernel, 1>(wt, nr, row_bytes, blocks, xi, yi, y_stride); break;
        case 2: rows_m<Kernel, 2>(wt, nr, row_bytes, blocks, xi, yi, y_stride); break;
        case 3: rows_m<Kernel, 3>(wt, nr, row_bytes, blocks, xi, yi, y_stride); break;
        case 4: rows_m<Kernel, 4>(wt, nr, row_bytes, blocks, xi, yi, y_stride); break;
        case 5: rows_m<Kernel, 5>(wt, nr, row_bytes, blocks, xi, yi, y_stride); break;
        case 6: rows_m<Kernel, 6>(wt, nr, row_bytes, blocks, xi, yi, y_stride); break;
        case 7: rows_m<Kernel, 7>(wt, nr, row_bytes, blocks, xi, yi, y_stride); break;
        default: rows_m<Kernel, 8>(wt, nr, row_bytes, blocks, xi, yi, y_stride); break;
      }
    }
  }
}

template <class Block>
void decode(const uint8_t* w, int64_t count, float* out) {
  for (int64_t b = 0; b < count / Block::kElements; ++b) {
    const Block block(w + b * Block::kBytes);
    for (int g = 0; g < Block::kGroups; ++g) {
      __m256 wv[4];
      widen_group<Block>(block.group(g), wv);
      float* o = out + b * Block::kElements + g * 32;
      for (int v = 0; v < 4; ++v) _mm256_storeu_ps(o + 8 * v, wv[v]);
    }
  }
}

// Returns false for a format without a vector decoder. scratch: room for (m + 3) * (k + 64) floats, 32-byte aligned.
bool gemv_any(QuantFormat format, const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y,
              int64_t y_stride, float* scratch) {
  switch (format) {
    case QuantFormat::kQ4_0:
      gemv_rows<PanelKernel<BlockQ4_0, PanelQ4<BlockQ4_0>>>(w, rows, k, x, m, y, y_stride, scratch);
      return true;
    case QuantFormat::kQ4_1:
      gemv_rows<PanelKernel<BlockQ4_1, PanelQ4<BlockQ4_1>>>(w, rows, k, x, m, y, y_stride, scratch);
      return true;
    case QuantFormat::kQ8_0:
      gemv_rows<PanelKernel<BlockQ8_0, PanelQ8>>(w, rows, k, x, m, y, y_stride, scratch);
      return true;
    case QuantFormat::kQ4_K: gemv_rows<SuperKernel<BlockQ4_K>>(w, rows, k, x, m, y, y_stride, scratch); return true;
    case QuantFormat::kQ6_K: gemv_rows<SuperKernel<BlockQ6_K>>(w, rows, k, x, m, y, y_stride, scratch); return true;
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

TESSERA_TARGET_REGION_END()

namespace tessera::kernels::cpu::packed {

void block_gemv_avx2(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                     float* y, int64_t y_stride) {
  TESSERA_CHECK(m >= 1, "block_gemv: ", m, " rows of x");
  (void)quantized_bytes(format, k);  // k must be whole blocks
  thread_local std::vector<float> scratch;  // the permuted rows of x (outside the target region: a library template)
  // x as interleave_x lays it out, then the buffered path's widened weight rows (32-byte aligned: whole vectors).
  const auto need = static_cast<size_t>((m + 3) * (k + 64) + 8);
  if (scratch.size() < need) scratch.resize(need);
  float* aligned = scratch.data();
  aligned += (32 - reinterpret_cast<uintptr_t>(aligned) % 32) % 32 / sizeof(float);
  TESSERA_CHECK(gemv_any(format, reinterpret_cast<const uint8_t*>(w), rows, k, x, m, y, y_stride, aligned),
                "block_gemv_avx2: no vector decoder for ", quant_format_name(format));
}

void block_decode_avx2(QuantFormat format, const std::byte* w, int64_t count, float* out) {
  (void)quantized_bytes(format, count);
  TESSERA_CHECK(decode_any(format, reinterpret_cast<const uint8_t*>(w), count, out),
                "block_decode_avx2: no vector decoder for ", quant_format_name(format));
}

}  // namespace tessera::kernels::cpu::packed

#else  // not x86: the callers never pick this build (cpu_has_avx2_fma() is false); the portable code serves anyway

namespace tessera::kernels::cpu::packed {
void block_gemv_avx2(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                     float* y, int64_t y_stride) {
  block_gemv_scalar(format, w, rows, k, x, m, y, y_stride);
}
void block_decode_avx2(QuantFormat format, const std::byte* w, int64_t count, float* out) {
  dequantize(format, std::span<const std::byte>(w, static_cast<size_t>(quantized_bytes(format, count))), count, out);
}
}  // namespace tessera::kernels::cpu::packed

#endif
