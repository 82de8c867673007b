#include "runtime/model/safetensors_dtype.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/base/error.h"
#include "kernels/base/half.h"

namespace tessera::runtime {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; so is the host");

struct Entry {
  SafetensorsDType dtype;
  SafetensorsDTypeTraits traits;
};

constexpr std::array<Entry, 15> kDTypes{{
    {SafetensorsDType::kF64, {"F64", 8, true}},
    {SafetensorsDType::kF32, {"F32", 4, true}},
    {SafetensorsDType::kF16, {"F16", 2, true}},
    {SafetensorsDType::kBF16, {"BF16", 2, true}},
    {SafetensorsDType::kF8_E4M3, {"F8_E4M3", 1, true}},
    {SafetensorsDType::kF8_E5M2, {"F8_E5M2", 1, true}},
    {SafetensorsDType::kI64, {"I64", 8, false}},
    {SafetensorsDType::kI32, {"I32", 4, false}},
    {SafetensorsDType::kI16, {"I16", 2, false}},
    {SafetensorsDType::kI8, {"I8", 1, false}},
    {SafetensorsDType::kU64, {"U64", 8, false}},
    {SafetensorsDType::kU32, {"U32", 4, false}},
    {SafetensorsDType::kU16, {"U16", 2, false}},
    {SafetensorsDType::kU8, {"U8", 1, false}},
    {SafetensorsDType::kBool, {"BOOL", 1, false}},
}};

template <class Bits, class Convert>
void decode_16bit(const std::byte* src, int64_t count, float* out, Convert convert) {
  for (int64_t i = 0; i < count; ++i) {
    uint16_t bits;
    std::memcpy(&bits, src + 2 * i, 2);
    out[i] = convert(Bits{bits});
  }
}

}  // namespace

std::optional<SafetensorsDType> parse_safetensors_dtype(std::string_view name) {
  for (const Entry& entry : kDTypes) {
    if (entry.traits.name == name) return entry.dtype;
  }
  return std::nullopt;
}

SafetensorsDTypeTraits safetensors_dtype_traits(SafetensorsDType dtype) {
  return kDTypes[static_cast<size_t>(dtype)].traits;
}

float f8_e4m3_to_float(uint8_t bits) {
  const float sign = (bits & 0x80u) != 0 ? -1.0f : 1.0f;
  const int exponent = (bits >> 3) & 0xf;
  const int mantissa = bits & 0x7;
  if (exponent == 0xf && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);  // subnormal: m/8 * 2^-6
  return sign * std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);    // (1 + m/8) * 2^(e-7)
}

float f8_e5m2_to_float(uint8_t bits) { return fp16_to_float(fp16{static_cast<uint16_t>(bits << 8)}); }

void decode_to_f32(SafetensorsDType dtype, const std::byte* src, int64_t count, float* out) {
  if (count == 0 && safetensors_dtype_traits(dtype).decodable) return;  // empty ranges may come with null buffers
  switch (dtype) {
    case SafetensorsDType::kF32:
      std::memcpy(out, src, static_cast<size_t>(count) * 4);
      return;
    case SafetensorsDType::kF64:
      for (int64_t i = 0; i < count; ++i) {
        double value;
        std::memcpy(&value, src + 8 * i, 8);
        out[i] = static_cast<float>(value);
      }
      return;
    case SafetensorsDType::kF16:
      decode_16bit<fp16>(src, count, out, fp16_to_float);
      return;
    case SafetensorsDType::kBF16:
      decode_16bit<bf16>(src, count, out, bf16_to_float);
      return;
    case SafetensorsDType::kF8_E4M3:
      for (int64_t i = 0; i < count; ++i) out[i] = f8_e4m3_to_float(static_cast<uint8_t>(src[i]));
      return;
    case SafetensorsDType::kF8_E5M2:
      for (int64_t i = 0; i < count; ++i) out[i] = f8_e5m2_to_float(static_cast<uint8_t>(src[i]));
      return;
    default:
      fail("safetensors dtype ", safetensors_dtype_traits(dtype).name, " is not a float type and cannot be read ",
           "as weights (supported: F64, F32, F16, BF16, F8_E4M3, F8_E5M2)");
  }
}

}  // namespace tessera::runtime
