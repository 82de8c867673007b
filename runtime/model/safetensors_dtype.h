#pragma once
// The element types of safetensors files (the "dtype" strings of the header) and their decoding to f32.
// Every dtype of the format is recognised so that a header is validated whatever it holds; only the float
// types (F64, F32, F16, BF16, F8_E4M3, F8_E5M2) can be read as weights.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tessera::runtime {

enum class SafetensorsDType : uint8_t {
  kF64, kF32, kF16, kBF16, kF8_E4M3, kF8_E5M2,
  kI64, kI32, kI16, kI8, kU64, kU32, kU16, kU8, kBool,
};

struct SafetensorsDTypeTraits {
  std::string_view name;  // as spelled in the header: "BF16"
  int64_t bytes;          // per element
  bool decodable;         // convertible to f32 by decode_to_f32
};

// nullopt for a string that is not a safetensors dtype.
std::optional<SafetensorsDType> parse_safetensors_dtype(std::string_view name);
SafetensorsDTypeTraits safetensors_dtype_traits(SafetensorsDType dtype);

// OCP FP8 E4M3 ("fn": no infinities, S.1111.111 is NaN), as torch.float8_e4m3fn.
float f8_e4m3_to_float(uint8_t bits);
// FP8 E5M2: the upper byte of an IEEE fp16.
float f8_e5m2_to_float(uint8_t bits);

// Converts `count` little-endian elements at `src` to f32. Throws tessera::Error for non-float dtypes.
void decode_to_f32(SafetensorsDType dtype, const std::byte* src, int64_t count, float* out);

}  // namespace tessera::runtime
