#pragma once
// Element types of in-memory tensors (activations, dequantized weights, KV cache). Quantized block formats
// of model files are the weight readers' business (runtime/model), not tensor dtypes.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera {

enum class DType : uint8_t { F32, F16, BF16, I32, I64, U8 };

constexpr size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
    case DType::U8: return "u8";
  }
  return "?";
}

// Parses "f32", "bf16", ...; throws tessera::Error naming the bad value.
DType parse_dtype(std::string_view name);

}  // namespace tessera
