#pragma once
// Conversions between f32 and the 16-bit float formats (bf16, IEEE fp16), bit-exact with PyTorch and
// numpy: round to nearest even, NaN kept NaN. Header-only because every layer converts in inner loops.
#include <bit>
#include <cstdint>
#include <cstring>

namespace tessera {

struct bf16 {
  uint16_t bits = 0;
};
struct fp16 {
  uint16_t bits = 0;
};

inline float bf16_to_float(bf16 value) { return std::bit_cast<float>(static_cast<uint32_t>(value.bits) << 16); }

inline bf16 float_to_bf16(float value) {
  uint32_t u = std::bit_cast<uint32_t>(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it a quiet NaN
    return bf16{static_cast<uint16_t>((u >> 16) | 0x40u)};
  }
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>((u + rounding) >> 16)};
}

inline float fp16_to_float(fp16 value) {
  const uint32_t h = value.bits;
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mantissa <<= 1;
      } while ((mantissa & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mantissa & 0x3ffu) << 13);
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
  }
  return std::bit_cast<float>(bits);
}

inline fp16 float_to_fp16(float value) {
  const uint32_t u = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return fp16{static_cast<uint16_t>(sign | 0x7e00u)};  // NaN
  if (abs >= 0x477ff000u) return fp16{static_cast<uint16_t>(sign | 0x7c00u)};  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in fp16: round to nearest even at 2^-24
    const float magnitude = std::bit_cast<float>(abs);
    const float scaled = magnitude * 16777216.0f;  // 2^24; exact, then round-to-nearest-even by the FPU
    const uint32_t rounded = static_cast<uint32_t>(__builtin_nearbyintf(scaled));
    return fp16{static_cast<uint16_t>(sign | rounded)};
  }
  const uint32_t rounding = 0xfffu + ((abs >> 13) & 1u);
  const uint32_t biased = abs - (112u << 23) + rounding;
  return fp16{static_cast<uint16_t>(sign | (biased >> 13))};
}

}  // namespace tessera
