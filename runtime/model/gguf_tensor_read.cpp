// GgufFile::read_rows / read_columns: dequantization of tensor slices straight from the mapping; the *_raw
// variants copy the stored blocks of a slice out undecoded.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/dequant.h"
#include "runtime/model/gguf_file.h"

namespace tessera::runtime {
namespace {

namespace cpu = tessera::kernels::cpu;

cpu::QuantFormat quant_format(const GgufFile& file, const GgufTensorInfo& tensor) {
  switch (tensor.type) {
    case GgmlType::kF32: return cpu::QuantFormat::kF32;
    case GgmlType::kF16: return cpu::QuantFormat::kF16;
    case GgmlType::kBF16: return cpu::QuantFormat::kBF16;
    case GgmlType::kQ4_0: return cpu::QuantFormat::kQ4_0;
    case GgmlType::kQ4_1: return cpu::QuantFormat::kQ4_1;
    case GgmlType::kQ5_0: return cpu::QuantFormat::kQ5_0;
    case GgmlType::kQ5_1: return cpu::QuantFormat::kQ5_1;
    case GgmlType::kQ8_0: return cpu::QuantFormat::kQ8_0;
    case GgmlType::kQ2_K: return cpu::QuantFormat::kQ2_K;
    case GgmlType::kQ3_K: return cpu::QuantFormat::kQ3_K;
    case GgmlType::kQ4_K: return cpu::QuantFormat::kQ4_K;
    case GgmlType::kQ5_K: return cpu::QuantFormat::kQ5_K;
    case GgmlType::kQ6_K: return cpu::QuantFormat::kQ6_K;
    case GgmlType::kQ8_1:
    case GgmlType::kQ8_K: break;
  }
  const auto traits = ggml_type_traits(static_cast<uint32_t>(tensor.type));
  fail(file.description(), ": tensor '", tensor.name, "' is stored as ",
       traits ? traits->name : std::string_view("an unknown type"), ", which Tessera cannot dequantize");
}

int64_t row_bytes(const GgufTensorInfo& tensor) {
  const GgmlTypeTraits traits = ggml_type_traits(tensor.type);
  return tensor.columns() / traits.block_elements * traits.block_bytes;
}

}  // namespace

void GgufFile::read_rows(const GgufTensorInfo& tensor, int64_t row_begin, int64_t row_end, float* out) const {
  const int64_t rows = tensor.rows();
  TESSERA_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= rows, description_, ": tensor '",
                tensor.name, "': row range [", row_begin, ", ", row_end, ") outside its ", rows, " rows");
  const cpu::QuantFormat format = quant_format(*this, tensor);
  const int64_t stride = row_bytes(tensor);
  const std::span<const std::byte> data = tensor_bytes(tensor);
  const auto first = static_cast<size_t>(row_begin * stride);
  const auto count = static_cast<size_t>((row_end - row_begin) * stride);
  cpu::dequantize(format, data.subspan(first, count), (row_end - row_begin) * tensor.columns(), out);
}

void GgufFile::read_columns(const GgufTensorInfo& tensor, int64_t col_begin, int64_t col_end, float* out) const {
  const int64_t columns = tensor.columns();
  TESSERA_CHECK(0 <= col_begin && col_begin <= col_end && col_end <= columns, description_, ": tensor '",
                tensor.name, "': column range [", col_begin, ", ", col_end, ") outside its ", columns, " columns");
  const cpu::QuantFormat format = quant_format(*this, tensor);
  const GgmlTypeTraits traits = ggml_type_traits(tensor.type);
  const int64_t stride = row_bytes(tensor);
  const int64_t width = col_end - col_begin;
  if (width == 0) return;
  // Whole blocks covering [col_begin, col_end) are decoded per row, then the requested columns copied out.
  const int64_t block_first = col_begin / traits.block_elements;
  const int64_t block_last = (col_end + traits.block_elements - 1) / traits.block_elements;
  const int64_t decoded = (block_last - block_first) * traits.block_elements;
  const int64_t skip = col_begin - block_first * traits.block_elements;
  std::vector<float> buffer(static_cast<size_t>(decoded));
  const std::span<const std::byte> data = tensor_bytes(tensor);
  const int64_t rows = tensor.rows();
  for (int64_t r = 0; r < rows; ++r) {
    const auto offset = static_cast<size_t>(r * stride + block_first * traits.block_bytes);
    const auto length = static_cast<size_t>((block_last - block_first) * traits.block_bytes);
    cpu::dequantize(format, data.subspan(offset, length), decoded, buffer.data());
    std::copy_n(buffer.data() + skip, width, out + r * width);
  }
}

kernels::cpu::QuantizedRows GgufFile::read_rows_raw(const GgufTensorInfo& tensor, int64_t row_begin,
                                                    int64_t row_end) const {
  const int64_t rows = tensor.rows();
  TESSERA_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= rows, description_, ": tensor '",
                tensor.name, "': row range [", row_begin, ", ", row_end, ") outside its ", rows, " rows");
  const int64_t stride = row_bytes(tensor);
  const std::span<const std::byte> data = tensor_bytes(tensor).subspan(
      static_cast<size_t>(row_begin * stride), static_cast<size_t>((row_end - row_begin) * stride));
  cpu::QuantizedRows out;
  out.format = quant_format(*this, tensor);
  out.rows = row_end - row_begin;
  out.cols = tensor.columns();
  out.bytes.assign(data.begin(), data.end());
  return out;
}

std::optional<kernels::cpu::QuantizedRows> GgufFile::read_columns_raw(const GgufTensorInfo& tensor, int64_t col_begin,
                                                                     int64_t col_end) const {
  const int64_t columns = tensor.columns();
  TESSERA_CHECK(0 <= col_begin && col_begin <= col_end && col_end <= columns, description_, ": tensor '",
                tensor.name, "': column range [", col_begin, ", ", col_end, ") outside its ", columns, " columns");
  const cpu::QuantFormat format = quant_format(*this, tensor);
  const GgmlTypeTraits traits = ggml_type_traits(tensor.type);
  if (col_begin % traits.block_elements != 0 || col_end % traits.block_elements != 0) return std::nullopt;
  const int64_t stride = row_bytes(tensor), rows = tensor.rows();
  const int64_t first = col_begin / traits.block_elements * traits.block_bytes;
  const int64_t length = (col_end - col_begin) / traits.block_elements * traits.block_bytes;
  const std::span<const std::byte> data = tensor_bytes(tensor);
  cpu::QuantizedRows out;
  out.format = format;
  out.rows = rows;
  out.cols = col_end - col_begin;
  out.bytes.resize(static_cast<size_t>(rows * length));
  for (int64_t r = 0; r < rows && length > 0; ++r) {
    std::memcpy(out.bytes.data() + r * length, data.data() + r * stride + first, static_cast<size_t>(length));
  }
  return out;
}

}  // namespace tessera::runtime
