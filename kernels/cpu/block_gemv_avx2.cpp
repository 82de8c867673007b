// The AVX2+FMA build of block_gemv.h (16 vector registers of 8 floats). The kernels are compiled under a
// target region (kernels/cpu/target_region.h) (so the shared decoders of block_decode_x86.h and the per-format templates all get
// AVX2 code) that holds nothing but intrinsics and internal-linkage code: no library template is instantiated in
// it, so no AVX2 copy of a shared inline function can reach the rest of the program. The public entry points below
// the region are plain code.
#include <cstdint>
#include <cstring>
#include <span>

#include "kernels/base/error.h"
#include "kernels/cpu/block_gemv.h"
#include "kernels/cpu/target_region.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

TESSERA_TARGET_REGION_BEGIN("avx2,fma,f16c")

#include "kernels/cpu/block_decode_x86.h"

namespace tessera::kernels::cpu::packed {
namespace {

// 8 quants (the low 8 bytes of q) to f32, then the block's affine map, as dequantize() computes it (see
// block_decode_x86.h on why a multiply-add the compiler may fuse still gives the reference's value).
template <bool kHasBias>
inline __m256 widen8(__m128i q, float scale, float bias) {
  const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_set1_ps(scale));
  if constexpr (kHasBias) return _mm256_add_ps(v, _mm256_set1_ps(bias));
  return v;
}

struct Widened32 {
  __m256 v[4];  // elements 0-7, 8-15, 16-23, 24-31 of a group
};

template <class Block>
inline Widened32 widen_group(Group32 q) {
  if constexpr (Block::kNibbleBase != 0) {  // q + base in bytes: exact, as dequantize()'s integer (q - 8)
    q.lo = _mm_add_epi8(q.lo, _mm_set1_epi8(Block::kNibbleBase));
    q.hi = _mm_add_epi8(q.hi, _mm_set1_epi8(Block::kNibbleBase));
  }
  return {{widen8<Block::kHasBias>(q.lo, q.scale_lo, q.bias_lo),
           widen8<Block::kHasBias>(_mm_srli_si128(q.lo, 8), q.scale_lo, q.bias_lo),
           widen8<Block::kHasBias>(q.hi, q.scale_hi, q.bias_hi),
           widen8<Block::kHasBias>(_mm_srli_si128(q.hi, 8), q.scale_hi, q.bias_hi)}};
}

inline float horizontal_sum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// R weight rows (row_bytes apart) times M rows of x (k apart): y[i * y_stride + r] += dot. The R rows are read
// side by side so that each block of x is loaded once for all of them and M * R accumulators hide the FMA latency.
template <class Block, int M, int R>
void gemv_tile(const uint8_t* w, int64_t row_bytes, int64_t k, const float* x, float* y, int64_t y_stride) {
  // The next tile's rows, requested now (as in the AVX-512 build; prefetches never fault past the end).
  for (int64_t offset = 0; offset < R * row_bytes; offset += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(w + R * row_bytes + offset), _MM_HINT_T0);
  }
  __m256 acc[R][M];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) acc[r][i] = _mm256_setzero_ps();
  }
  const int64_t blocks = k / Block::kElements;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * Block::kElements;
    for (int r = 0; r < R; ++r) {
      const Block block(w + r * row_bytes + b * Block::kBytes);
      for (int g = 0; g < Block::kGroups; ++g) {
        const Widened32 wv = widen_group<Block>(block.group(g));
        for (int i = 0; i < M; ++i) {
          const float* xg = xb + i * k + g * 32;
          acc[r][i] = _mm256_fmadd_ps(wv.v[0], _mm256_loadu_ps(xg), acc[r][i]);
          acc[r][i] = _mm256_fmadd_ps(wv.v[1], _mm256_loadu_ps(xg + 8), acc[r][i]);
          acc[r][i] = _mm256_fmadd_ps(wv.v[2], _mm256_loadu_ps(xg + 16), acc[r][i]);
          acc[r][i] = _mm256_fmadd_ps(wv.v[3], _mm256_loadu_ps(xg + 24), acc[r][i]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < M; ++i) y[i * y_stride + r] += horizontal_sum(acc[r][i]);
  }
}

template <class Block, int M>
void gemv_rows_m(const uint8_t* w, int64_t rows, int64_t k, const float* x, float* y, int64_t y_stride) {
  constexpr int R = M == 1 ? 4 : M == 2 ? 2 : 1;  // 3 to 8 accumulators
  const int64_t row_bytes = k / Block::kElements * Block::kBytes;
  int64_t r = 0;
  for (; r + R <= rows; r += R) gemv_tile<Block, M, R>(w + r * row_bytes, row_bytes, k, x, y + r, y_stride);
  for (; r < rows; ++r) gemv_tile<Block, M, 1>(w + r * row_bytes, row_bytes, k, x, y + r, y_stride);
}

template <class Block>
void gemv_rows(const uint8_t* w, int64_t rows, int64_t k, const float* x, int64_t m, float* y, int64_t y_stride) {
  switch (m) {
    case 1: return gemv_rows_m<Block, 1>(w, rows, k, x, y, y_stride);
    case 2: return gemv_rows_m<Block, 2>(w, rows, k, x, y, y_stride);
    case 3: return gemv_rows_m<Block, 3>(w, rows, k, x, y, y_stride);
    case 4: return gemv_rows_m<Block, 4>(w, rows, k, x, y, y_stride);
    case 5: return gemv_rows_m<Block, 5>(w, rows, k, x, y, y_stride);
    case 6: return gemv_rows_m<Block, 6>(w, rows, k, x, y, y_stride);
    case 7: return gemv_rows_m<Block, 7>(w, rows, k, x, y, y_stride);
    default: return gemv_rows_m<Block, 8>(w, rows, k, x, y, y_stride);
  }
}

template <class Block>
void decode(const uint8_t* w, int64_t count, float* out) {
  for (int64_t b = 0; b < count / Block::kElements; ++b) {
    const Block block(w + b * Block::kBytes);
    for (int g = 0; g < Block::kGroups; ++g) {
      const Widened32 wv = widen_group<Block>(block.group(g));
      float* o = out + b * Block::kElements + g * 32;
      for (int v = 0; v < 4; ++v) _mm256_storeu_ps(o + 8 * v, wv.v[v]);
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

TESSERA_TARGET_REGION_END()

namespace tessera::kernels::cpu::packed {

void block_gemv_avx2(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                       float* y, int64_t y_stride) {
  TESSERA_CHECK(m >= 1 && m <= kBlockGemvMaxRows, "block_gemv: ", m, " rows of x (1 to ", kBlockGemvMaxRows, ")");
  (void)quantized_bytes(format, k);  // k must be whole blocks
  TESSERA_CHECK(gemv_any(format, reinterpret_cast<const uint8_t*>(w), rows, k, x, m, y, y_stride),
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
