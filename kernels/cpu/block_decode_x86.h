#pragma once
// Vector decoders of ggml blocks (and the weight tile size, l2_tile_rows), shared by the AVX2 and AVX-512 builds of
// block_gemv.h and the int8 kernels. Internal header: include it only from those files, after immintrin.h and inside
// their target region (target_region.h) (it needs F16C and SSE4.1), so that each file compiles its own copy for its
// own instruction set. Everything here has internal
// linkage for that reason: one copy per instruction set, never merged by the linker.
//
// A decoder turns one block into groups of 32 elements, each group as 32 signed 8-bit quants q plus, per half of
// 16 elements, the affine map y = scale * (q + kNibbleBase) (+ bias) that dequantize() applies. The scales are
// computed with the same f32 operations as dequant.cpp, so the widened values are bit-identical to the reference
// decoder's:
//   Q4_0: d * (q - 8)      Q4_1: d * q + m      Q8_0: q * d
//   Q4_K: (d * sc) * q - dmin * mn   (written as + (-(dmin * mn)): the same IEEE result)
//   Q6_K: (d * sc) * (q - 32)
// GCC contracts a multiply followed by an add into one FMA where the target has it (C++ defaults to
// -ffp-contract=fast), unlike dequant.cpp's baseline build. That cannot change a value here: every product that
// feeds an add is exact in f32 (an fp16 scale has 11 significant bits, a 6-bit sub-scale and a 4-bit quant add at
// most 10 more), so the only rounding is the add's, fused or not.
// The 4-bit formats (kNibbles) give the raw nibbles, 0 to 15, with one scale and bias for the whole group: their 16
// possible values can be tabulated once per group and looked up (AVX-512's 16-entry permute) instead of converting
// and scaling every element.
#include <cstdint>
#include <cstring>

namespace tessera::kernels::cpu::packed {
namespace {

// The weight rows of one tile for every kernel here: ~128 KB of blocks, so that memory delivers each weight once per
// call while every group of x rows passes over the tile; a multiple of `multiple` rows (the kernel's row group), at
// least one group. Plain arithmetic: no library template inside a target region.
constexpr int64_t l2_tile_rows(int64_t row_bytes, int64_t multiple) {
  const int64_t fit = 128 * 1024 / (row_bytes > 0 ? row_bytes : 1) / multiple * multiple;
  return fit > multiple ? fit : multiple;
}

struct Group32 {
  __m128i lo, hi;                  // quants of elements 0-15 and 16-31 of the group, as signed bytes
  float scale_lo, scale_hi;        // per half
  float bias_lo, bias_hi;          // used only by the formats whose kHasBias is true (0 elsewhere)
};

// A group of a 4-bit format before its nibbles are split out: element l < 16 is nibble `shift` (0: low, 4: high)
// of byte l of `lo`, element 16 + l the same nibble of byte l of `hi`; one scale and bias for all 32. The AVX-512
// build widens the bytes to 32-bit lanes once and lets the table permute ignore the other nibble.
struct NibbleGroup {
  __m128i lo, hi;
  int shift_lo, shift_hi;
  float scale, bias;
};

inline __m128i nibbles_of(__m128i bytes, int shift) {
  return _mm_and_si128(_mm_srl_epi16(bytes, _mm_cvtsi32_si128(shift)), _mm_set1_epi8(0x0F));
}

inline Group32 split(const NibbleGroup& n) {
  return {nibbles_of(n.lo, n.shift_lo), nibbles_of(n.hi, n.shift_hi), n.scale, n.scale, n.bias, n.bias};
}

inline float load_f16_scale(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return _cvtsh_ss(bits);  // exact, like fp16_to_float
}

inline __m128i load_bytes16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }


// The fp16 scale (and bias) fields of `n` consecutive 32-element blocks (n <= kScaleRun) as f32, converted 8 at a
// time: one vector conversion per 8 blocks instead of a load, a conversion and a broadcast per field, and the kernel
// then broadcasts them from memory (a plain load), sparing the shuffle unit that the quants already keep busy. The
// 8 fields are packed with integer shifts (idle ALUs) rather than 2-byte stores, which a vector load of the same
// bytes could not forward from.
inline constexpr int kScaleRun = 32;

inline uint64_t load_u16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return bits;
}

// Fields at `offset` of blocks j .. j + 7 (those below n; zero beyond), converted into out[0, 8).
template <class Block>
inline void convert_eight(const uint8_t* blocks, int j, int n, int offset, float* out) {
  uint64_t low = 0, high = 0;
  if (j + 8 <= n) {  // the usual case, without a test per block
    for (int t = 0; t < 4; ++t) {
      low |= load_u16(blocks + (j + t) * Block::kBytes + offset) << (16 * t);
      high |= load_u16(blocks + (j + 4 + t) * Block::kBytes + offset) << (16 * t);
    }
  } else {
    for (int t = 0; t < 4; ++t) {
      if (j + t < n) low |= load_u16(blocks + (j + t) * Block::kBytes + offset) << (16 * t);
      if (j + 4 + t < n) high |= load_u16(blocks + (j + 4 + t) * Block::kBytes + offset) << (16 * t);
    }
  }
  const __m128i halves = _mm_set_epi64x(static_cast<long long>(high), static_cast<long long>(low));
  _mm256_store_ps(out, _mm256_cvtph_ps(halves));
}

template <class Block>
inline void convert_scales(const uint8_t* blocks, int n, float* scale, float* bias) {
  for (int j = 0; j < n; j += 8) {
    convert_eight<Block>(blocks, j, n, Block::kScaleOffset, scale + j);
    if constexpr (Block::kBiasOffset >= 0) convert_eight<Block>(blocks, j, n, Block::kBiasOffset, bias + j);
  }
}

// 18 bytes: fp16 d, 16 bytes of nibbles (element j low nibble of qs[j], element j + 16 its high nibble).
struct BlockQ4_0 {
  static constexpr int64_t kElements = 32, kBytes = 18, kGroups = 1;
  static constexpr bool kHasBias = false, kNibbles = true;
  static constexpr int kNibbleBase = -8;
  static constexpr bool kSharedNibbleBytes = true;  // both halves' nibbles in the same 16 bytes
  static constexpr int kScaleOffset = 0, kBiasOffset = -1;
  const uint8_t* b;
  float d;
  explicit BlockQ4_0(const uint8_t* block) : b(block), d(load_f16_scale(block)) {}
  BlockQ4_0(const uint8_t* block, float scale, float) : b(block), d(scale) {}
  NibbleGroup nibbles(int) const {
    const __m128i qs = load_bytes16(b + 2);
    return {qs, qs, 0, 4, d, 0.0f};
  }
  Group32 group(int g) const { return split(nibbles(g)); }
};

// 20 bytes: fp16 d, fp16 m, 16 bytes of nibbles as Q4_0.
struct BlockQ4_1 {
  static constexpr int64_t kElements = 32, kBytes = 20, kGroups = 1;
  static constexpr bool kHasBias = true, kNibbles = true;
  static constexpr int kNibbleBase = 0;
  static constexpr bool kSharedNibbleBytes = true;
  static constexpr int kScaleOffset = 0, kBiasOffset = 2;
  const uint8_t* b;
  float d, m;
  explicit BlockQ4_1(const uint8_t* block) : b(block), d(load_f16_scale(block)), m(load_f16_scale(block + 2)) {}
  BlockQ4_1(const uint8_t* block, float scale, float bias) : b(block), d(scale), m(bias) {}
  NibbleGroup nibbles(int) const {
    const __m128i qs = load_bytes16(b + 4);
    return {qs, qs, 0, 4, d, m};
  }
  Group32 group(int g) const { return split(nibbles(g)); }
};

// 34 bytes: fp16 d, 32 int8 quants.
struct BlockQ8_0 {
  static constexpr int64_t kElements = 32, kBytes = 34, kGroups = 1;
  static constexpr bool kHasBias = false, kNibbles = false;
  static constexpr int kNibbleBase = 0;
  static constexpr int kScaleOffset = 0, kBiasOffset = -1;
  const uint8_t* b;
  float d;
  explicit BlockQ8_0(const uint8_t* block) : b(block), d(load_f16_scale(block)) {}
  BlockQ8_0(const uint8_t* block, float scale, float) : b(block), d(scale) {}
  Group32 group(int) const { return {load_bytes16(b + 2), load_bytes16(b + 18), d, d, 0.0f, 0.0f}; }
};

// 144 bytes: fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins (ggml's get_scale_min_k4), 128 bytes of
// nibbles: group g takes the low (g even) or high (g odd) nibbles of qs[(g / 2) * 32, + 32).
struct BlockQ4_K {
  static constexpr int64_t kElements = 256, kBytes = 144, kGroups = 8;
  static constexpr bool kHasBias = true, kNibbles = true;
  static constexpr int kNibbleBase = 0;
  static constexpr bool kSharedNibbleBytes = false;
  const uint8_t* b;
  float dg[8], neg_mg[8];
  explicit BlockQ4_K(const uint8_t* block) : b(block) {
    const float d = load_f16_scale(block), dmin = load_f16_scale(block + 2);
    const uint8_t* s = block + 4;
    for (int j = 0; j < 4; ++j) {
      const int sc_lo = s[j] & 0x3F, mn_lo = s[j + 4] & 0x3F;
      const int sc_hi = (s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30);
      const int mn_hi = (s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30);
      dg[j] = d * static_cast<float>(sc_lo);
      dg[j + 4] = d * static_cast<float>(sc_hi);
      neg_mg[j] = -(dmin * static_cast<float>(mn_lo));
      neg_mg[j + 4] = -(dmin * static_cast<float>(mn_hi));
    }
  }
  NibbleGroup nibbles(int g) const {
    const uint8_t* q = b + 16 + (g / 2) * 32;
    return {load_bytes16(q), load_bytes16(q + 16), 4 * (g % 2), 4 * (g % 2), dg[g], neg_mg[g]};
  }
  Group32 group(int g) const { return split(nibbles(g)); }
};

// 210 bytes: 128 bytes of low nibbles ql, 64 bytes of 2-bit high parts qh, 16 int8 scales (one per 16 elements),
// fp16 d. Group g = 4 * h + j (h: which 128-element half, j: which of its four 32-element quarters) takes
// nibble j / 2 of ql[h * 64 + (j % 2) * 32 + l] and bits 2j, 2j+1 of qh[h * 32 + l], l < 32.
struct BlockQ6_K {
  static constexpr int64_t kElements = 256, kBytes = 210, kGroups = 8;
  static constexpr bool kHasBias = false, kNibbles = false;
  static constexpr int kNibbleBase = 0;
  const uint8_t* b;
  float d;
  explicit BlockQ6_K(const uint8_t* block) : b(block), d(load_f16_scale(block + 208)) {}
  Group32 group(int g) const {
    const int h = g / 4, j = g % 4;
    const uint8_t* ql = b + h * 64 + (j % 2) * 32;
    const uint8_t* qh = b + 128 + h * 32;
    const __m128i nibble_shift = _mm_cvtsi32_si128(4 * (j / 2));
    const __m128i high_shift = _mm_cvtsi32_si128(2 * j);
    const auto quants = [&](int offset) {
      const __m128i low = _mm_and_si128(_mm_srl_epi16(load_bytes16(ql + offset), nibble_shift), _mm_set1_epi8(0x0F));
      const __m128i high = _mm_and_si128(_mm_srl_epi16(load_bytes16(qh + offset), high_shift), _mm_set1_epi8(0x03));
      return _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32));
    };
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192) + h * 8 + 2 * j;
    return {quants(0), quants(16), d * static_cast<float>(scales[0]), d * static_cast<float>(scales[1]), 0.0f,
            0.0f};
  }
};

}  // namespace
}  // namespace tessera::kernels::cpu::packed
