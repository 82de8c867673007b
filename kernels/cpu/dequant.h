#pragma once
// Decoding of ggml's block-quantized and 16-bit float formats to f32 (and bf16), bit-exact with ggml's
// reference dequantize_row_* and gguf-py's quants.py: the same f32 operations in the same order, no fused
// multiply-add. Works on raw little-endian bytes of any alignment; knows nothing about files.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kernels/base/half.h"

namespace tessera::kernels::cpu {

enum class QuantFormat : uint8_t {
  kF32, kF16, kBF16, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K,
};

struct QuantLayout {
  int64_t block_elements;  // 1 for the plain float formats
  int64_t block_bytes;
};

QuantLayout quant_layout(QuantFormat format);
std::string_view quant_format_name(QuantFormat format);
// Bytes that hold `count` elements; throws tessera::Error when count is negative or not whole blocks.
int64_t quantized_bytes(QuantFormat format, int64_t count);

// Decodes `count` elements (whole blocks) from the front of `src` into out[0, count). Throws tessera::Error
// when src holds fewer than quantized_bytes(format, count) bytes.
void dequantize(QuantFormat format, std::span<const std::byte> src, int64_t count, float* out);
// The same, each value then rounded to bf16 (round to nearest even).
void dequantize_to_bf16(QuantFormat format, std::span<const std::byte> src, int64_t count, bf16* out);

}  // namespace tessera::kernels::cpu
