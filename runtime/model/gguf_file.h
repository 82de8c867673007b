#pragma once
// A GGUF file (versions 2 and 3), memory-mapped. Parsing validates every length, offset and dimension against
// the file size before anything is read, so a truncated or lying file is an Error naming the file and the
// problem, never an out-of-bounds read. Tensor data stays in the mapping; readers copy out only what they need.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kernels/cpu/quantized_rows.h"
#include "runtime/model/ggml_type.h"

namespace tessera::runtime {

// A GGUF metadata value: scalars, strings, and (homogeneous) arrays of them, nested arrays included.
struct GgufValue;
using GgufArray = std::vector<GgufValue>;
struct GgufValue {
  enum class Type : uint32_t {
    kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6, kBool = 7,
    kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
  };
  Type type = Type::kUint8;
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>> value;
  Type element_type = Type::kUint8;  // for arrays

  std::optional<int64_t> as_int() const;   // any integer type (and bool), range-checked
  std::optional<double> as_float() const;  // any numeric type
  const std::string* as_string() const;
  const GgufArray* as_array() const;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGUF order: dims[0] is the fastest-varying (columns); PyTorch order is reversed
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;        // from the start of the data section
  uint64_t nbytes = 0;        // validated against the file size
  int64_t rows() const;       // product of dims[1..]; 1 for a vector
  int64_t columns() const;    // dims[0]
};

class GgufFile {
 public:
  // Maps and parses the file; throws tessera::Error naming the file and the problem.
  static std::shared_ptr<const GgufFile> open(const std::filesystem::path& path);
  // Parses an in-memory image (used by the fuzzer and tests); the bytes must outlive the object.
  static std::shared_ptr<const GgufFile> parse(std::span<const std::byte> bytes, std::string description);

  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& description() const { return description_; }  // the path, for messages
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }

  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  // Typed look-ups: nullopt when absent; Error when present with the wrong type.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;  // empty when absent
  std::vector<double> get_float_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // The tensor's bytes inside the mapping (bounds already validated at parse time).
  std::span<const std::byte> tensor_bytes(const GgufTensorInfo& tensor) const;

  // Dequantizes rows [row_begin, row_end) of a tensor (rows = product of dims[1..]) to f32, row-major.
  void read_rows(const GgufTensorInfo& tensor, int64_t row_begin, int64_t row_end, float* out) const;
  // Dequantizes columns [col_begin, col_end) of every row (whole quantization blocks are decoded and trimmed).
  void read_columns(const GgufTensorInfo& tensor, int64_t col_begin, int64_t col_end, float* out) const;
  // Rows [row_begin, row_end) copied out as stored (whole rows of the tensor's blocks), undecoded.
  kernels::cpu::QuantizedRows read_rows_raw(const GgufTensorInfo& tensor, int64_t row_begin, int64_t row_end) const;
  // Columns [col_begin, col_end) of every row as stored, when both ends fall on block boundaries; nullopt otherwise.
  std::optional<kernels::cpu::QuantizedRows> read_columns_raw(const GgufTensorInfo& tensor, int64_t col_begin,
                                                              int64_t col_end) const;

 private:
  GgufFile() = default;
  class Parser;
  struct Mapping;

  std::string description_;
  std::unique_ptr<Mapping> mapping_;
  std::span<const std::byte> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue, std::less<>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace tessera::runtime
