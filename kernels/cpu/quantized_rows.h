#pragma once
// Whole rows of a matrix as a model file stores them: ggml blocks (Q4_1, Q8_0, Q4_K, ...) or plain 16/32-bit
// floats, row after row, each row quantized_bytes(format, cols) bytes. What WeightSource::read_rows_raw hands to
// PackedMatrix's native format, so that decode can compute on the file's own blocks instead of f32 copies.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/dequant.h"

namespace tessera::kernels::cpu {

struct QuantizedRows {
  QuantFormat format = QuantFormat::kF32;
  int64_t rows = 0;
  int64_t cols = 0;              // elements per row: a whole number of the format's blocks
  std::vector<std::byte> bytes;  // rows * row_bytes()

  int64_t row_bytes() const { return quantized_bytes(format, cols); }
};

}  // namespace tessera::kernels::cpu
