#include "kernels/cpu/dequant.h"

#include <algorithm>
#include <cstring>

#include "kernels/base/error.h"

// Exactness: every formula below is ggml's reference (and gguf-py's numpy) formula with the same f32
// intermediates. A product and the sum that follows it are written as two statements on purpose: C++
// compilers may only contract a*b+c into an FMA within one expression (clang's default), and GCC with
// -std=c++20 does not contract at all, so the rounding matches numpy's separate multiply and add.

namespace tessera::kernels::cpu {
namespace {

constexpr int64_t kQK = 32;   // elements per block of the legacy formats
constexpr int64_t kQKK = 256; // elements per K-quant super-block

inline float load_f16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return fp16_to_float(fp16{bits});
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

// --- legacy 32-element blocks: element j from the low nibble of qs[j], element j + 16 from the high one.

void decode_q4_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    y[j + kQK / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void decode_q4_1(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float m = load_f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    const float lo = d * static_cast<float>(qs[j] & 0x0F);
    const float hi = d * static_cast<float>(qs[j] >> 4);
    y[j] = lo + m;
    y[j + kQK / 2] = hi + m;
  }
}

void decode_q5_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint32_t qh = load_u32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(lo - 16);
    y[j + kQK / 2] = d * static_cast<float>(hi - 16);
  }
}

void decode_q5_1(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float m = load_f16(b + 2);
  const uint32_t qh = load_u32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    const float lo_scaled = d * static_cast<float>(lo);
    const float hi_scaled = d * static_cast<float>(hi);
    y[j] = lo_scaled + m;
    y[j + kQK / 2] = hi_scaled + m;
  }
}

void decode_q8_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// --- K-quants: 256-element super-blocks with 6-bit (Q4_K/Q5_K), 4-bit (Q2_K), 6-bit packed (Q3_K) or int8
// (Q6_K) sub-block scales.

void decode_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;       // 16: low nibble scale, high nibble min
  const uint8_t* qs = b + 16;      // 64: four 2-bit values per byte
  const float d = load_f16(b + 80);
  const float dmin = load_f16(b + 82);
  for (int half = 0; half < 2; ++half) {
    for (int shift = 0; shift < 4; ++shift) {
      for (int l = 0; l < 32; ++l) {
        const int index = half * 128 + shift * 32 + l;
        const int group = index / 16;
        const float dl = d * static_cast<float>(scales[group] & 0x0F);
        const float ml = dmin * static_cast<float>(scales[group] >> 4);
        const int q = (qs[half * 32 + l] >> (2 * shift)) & 3;
        const float scaled = dl * static_cast<float>(q);
        y[index] = scaled - ml;
      }
    }
  }
}

void decode_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;        // 32: bit k of hmask[l] is the high bit of element k * 32 + l
  const uint8_t* qs = b + 32;      // 64: low 2 bits
  const uint8_t* packed = b + 96;  // 12: sixteen 6-bit scales
  const float d = load_f16(b + 108);
  float dl[16];
  for (int i = 0; i < 16; ++i) {
    const int low = (packed[i % 8] >> (4 * (i / 8))) & 0x0F;
    const int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 0x03;
    const int scale = static_cast<int8_t>(static_cast<uint8_t>(low | (high << 4))) - 32;
    dl[i] = d * static_cast<float>(scale);
  }
  for (int half = 0; half < 2; ++half) {
    for (int shift = 0; shift < 4; ++shift) {
      for (int l = 0; l < 32; ++l) {
        const int index = half * 128 + shift * 32 + l;
        const int low = (qs[half * 32 + l] >> (2 * shift)) & 3;
        const int high_bit = (hmask[l] >> (index / 32)) & 1;
        const int q = low - ((high_bit ^ 1) << 2);  // the offset of 4 applies when the mask bit is clear
        y[index] = dl[index / 16] * static_cast<float>(q);
      }
    }
  }
}

// The 6-bit scales and mins of Q4_K and Q5_K, packed into 12 bytes (ggml's get_scale_min_k4).
void unpack_scale_min_k4(const uint8_t* s, uint8_t* sc, uint8_t* mn) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 0x3F;
    mn[j] = s[j + 4] & 0x3F;
    sc[j + 4] = static_cast<uint8_t>((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
    mn[j + 4] = static_cast<uint8_t>((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
  }
}

void decode_q4_k(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  uint8_t sc[8], mn[8];
  unpack_scale_min_k4(b + 4, sc, mn);
  const uint8_t* qs = b + 16;
  for (int group = 0; group < 8; ++group) {
    const float dg = d * static_cast<float>(sc[group]);
    const float mg = dmin * static_cast<float>(mn[group]);
    const uint8_t* q = qs + (group / 2) * 32;
    const int shift = 4 * (group % 2);
    for (int l = 0; l < 32; ++l) {
      const float scaled = dg * static_cast<float>((q[l] >> shift) & 0x0F);
      y[group * 32 + l] = scaled - mg;
    }
  }
}

void decode_q5_k(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  uint8_t sc[8], mn[8];
  unpack_scale_min_k4(b + 4, sc, mn);
  const uint8_t* qh = b + 16;  // 32: bit g of qh[l] is the fifth bit of element g * 32 + l
  const uint8_t* qs = b + 48;  // 128
  for (int group = 0; group < 8; ++group) {
    const float dg = d * static_cast<float>(sc[group]);
    const float mg = dmin * static_cast<float>(mn[group]);
    const uint8_t* q = qs + (group / 2) * 32;
    const int shift = 4 * (group % 2);
    for (int l = 0; l < 32; ++l) {
      const int value = ((q[l] >> shift) & 0x0F) | (((qh[l] >> group) & 1) << 4);
      const float scaled = dg * static_cast<float>(value);
      y[group * 32 + l] = scaled - mg;
    }
  }
}

void decode_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;                                            // 128: low 4 bits
  const uint8_t* qh = b + 128;                                      // 64: high 2 bits
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);  // 16
  const float d = load_f16(b + 208);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* l4 = ql + half * 64;
    const uint8_t* h2 = qh + half * 32;
    float* out = y + half * 128;
    const int8_t* sc = scales + half * 8;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((l4[l] & 0x0F) | (((h2[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((l4[l + 32] & 0x0F) | (((h2[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4)) - 32;
      out[l] = (d * static_cast<float>(sc[is + 0])) * static_cast<float>(q1);
      out[l + 32] = (d * static_cast<float>(sc[is + 2])) * static_cast<float>(q2);
      out[l + 64] = (d * static_cast<float>(sc[is + 4])) * static_cast<float>(q3);
      out[l + 96] = (d * static_cast<float>(sc[is + 6])) * static_cast<float>(q4);
    }
  }
}

using BlockDecoder = void (*)(const uint8_t*, float*);

template <BlockDecoder decode>
void decode_blocks(const uint8_t* src, int64_t blocks, int64_t block_bytes, int64_t block_elements, float* out) {
  for (int64_t i = 0; i < blocks; ++i) decode(src + i * block_bytes, out + i * block_elements);
}

}  // namespace

QuantLayout quant_layout(QuantFormat format) {
  switch (format) {
    case QuantFormat::kF32: return {1, 4};
    case QuantFormat::kF16: return {1, 2};
    case QuantFormat::kBF16: return {1, 2};
    case QuantFormat::kQ4_0: return {kQK, 18};
    case QuantFormat::kQ4_1: return {kQK, 20};
    case QuantFormat::kQ5_0: return {kQK, 22};
    case QuantFormat::kQ5_1: return {kQK, 24};
    case QuantFormat::kQ8_0: return {kQK, 34};
    case QuantFormat::kQ2_K: return {kQKK, 84};
    case QuantFormat::kQ3_K: return {kQKK, 110};
    case QuantFormat::kQ4_K: return {kQKK, 144};
    case QuantFormat::kQ5_K: return {kQKK, 176};
    case QuantFormat::kQ6_K: return {kQKK, 210};
  }
  fail("unknown quantization format ", static_cast<int>(format));
}

std::string_view quant_format_name(QuantFormat format) {
  switch (format) {
    case QuantFormat::kF32: return "F32";
    case QuantFormat::kF16: return "F16";
    case QuantFormat::kBF16: return "BF16";
    case QuantFormat::kQ4_0: return "Q4_0";
    case QuantFormat::kQ4_1: return "Q4_1";
    case QuantFormat::kQ5_0: return "Q5_0";
    case QuantFormat::kQ5_1: return "Q5_1";
    case QuantFormat::kQ8_0: return "Q8_0";
    case QuantFormat::kQ2_K: return "Q2_K";
    case QuantFormat::kQ3_K: return "Q3_K";
    case QuantFormat::kQ4_K: return "Q4_K";
    case QuantFormat::kQ5_K: return "Q5_K";
    case QuantFormat::kQ6_K: return "Q6_K";
  }
  return "unknown";
}

int64_t quantized_bytes(QuantFormat format, int64_t count) {
  const QuantLayout layout = quant_layout(format);
  TESSERA_CHECK(count >= 0 && count % layout.block_elements == 0, "dequantize ", quant_format_name(format), ": ",
                count, " elements is not a whole number of ", layout.block_elements, "-element blocks");
  int64_t bytes = 0;
  TESSERA_CHECK(!__builtin_mul_overflow(count / layout.block_elements, layout.block_bytes, &bytes), "dequantize ",
                quant_format_name(format), ": byte size of ", count, " elements overflows");
  return bytes;
}

void dequantize(QuantFormat format, std::span<const std::byte> src, int64_t count, float* out) {
  const QuantLayout layout = quant_layout(format);
  const int64_t bytes = quantized_bytes(format, count);
  TESSERA_CHECK(static_cast<uint64_t>(bytes) <= src.size(), "dequantize ", quant_format_name(format), ": ", count,
                " elements need ", bytes, " bytes but only ", src.size(), " were given");
  const auto* p = reinterpret_cast<const uint8_t*>(src.data());
  const int64_t blocks = count / layout.block_elements;
  switch (format) {
    case QuantFormat::kF32:
      if (count > 0) std::memcpy(out, p, static_cast<size_t>(bytes));
      return;
    case QuantFormat::kF16:
      for (int64_t i = 0; i < count; ++i) out[i] = load_f16(p + 2 * i);
      return;
    case QuantFormat::kBF16:
      for (int64_t i = 0; i < count; ++i) {
        uint16_t bits;
        std::memcpy(&bits, p + 2 * i, sizeof bits);
        out[i] = bf16_to_float(bf16{bits});
      }
      return;
    case QuantFormat::kQ4_0: return decode_blocks<decode_q4_0>(p, blocks, layout.block_bytes, kQK, out);
    case QuantFormat::kQ4_1: return decode_blocks<decode_q4_1>(p, blocks, layout.block_bytes, kQK, out);
    case QuantFormat::kQ5_0: return decode_blocks<decode_q5_0>(p, blocks, layout.block_bytes, kQK, out);
    case QuantFormat::kQ5_1: return decode_blocks<decode_q5_1>(p, blocks, layout.block_bytes, kQK, out);
    case QuantFormat::kQ8_0: return decode_blocks<decode_q8_0>(p, blocks, layout.block_bytes, kQK, out);
    case QuantFormat::kQ2_K: return decode_blocks<decode_q2_k>(p, blocks, layout.block_bytes, kQKK, out);
    case QuantFormat::kQ3_K: return decode_blocks<decode_q3_k>(p, blocks, layout.block_bytes, kQKK, out);
    case QuantFormat::kQ4_K: return decode_blocks<decode_q4_k>(p, blocks, layout.block_bytes, kQKK, out);
    case QuantFormat::kQ5_K: return decode_blocks<decode_q5_k>(p, blocks, layout.block_bytes, kQKK, out);
    case QuantFormat::kQ6_K: return decode_blocks<decode_q6_k>(p, blocks, layout.block_bytes, kQKK, out);
  }
}

void dequantize_to_bf16(QuantFormat format, std::span<const std::byte> src, int64_t count, bf16* out) {
  const QuantLayout layout = quant_layout(format);
  (void)quantized_bytes(format, count);  // validates count before the chunking below relies on it
  // Chunks of whole blocks through a stack buffer: 4096 is a multiple of every block size.
  constexpr int64_t kChunk = 4096;
  float buffer[kChunk];
  for (int64_t done = 0; done < count; done += kChunk) {
    const int64_t n = std::min(kChunk, count - done);
    const auto offset = static_cast<size_t>(done / layout.block_elements * layout.block_bytes);
    TESSERA_CHECK(offset <= src.size(), "dequantize ", quant_format_name(format), ": ", count,
                  " elements need more than the ", src.size(), " bytes given");
    dequantize(format, src.subspan(offset), n, buffer);
    for (int64_t i = 0; i < n; ++i) out[done + i] = float_to_bf16(buffer[i]);
  }
}

}  // namespace tessera::kernels::cpu
