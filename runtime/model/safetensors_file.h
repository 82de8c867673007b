#pragma once
// One safetensors file, memory-mapped: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data section.
// Parsing validates the whole header against the file size before anything is read (as strictly as the
// reference implementation: offsets contiguous, no overlap, no gap, sizes equal to shape x dtype), so a
// truncated or lying file is an Error naming the file and the tensor, never an out-of-bounds read.
// Readers copy out and convert only the bytes they need.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model/safetensors_dtype.h"

namespace tessera::runtime {

struct SafetensorsTensor {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::kF32;
  std::vector<int64_t> shape;  // PyTorch order
  uint64_t begin = 0;          // byte offsets from the start of the data section, validated
  uint64_t end = 0;

  int64_t numel() const;
  // The 2-D view used by range reads: columns = last dimension, rows = product of the others.
  // A vector of n elements is n rows of one column (matching WeightSource::read_rows on vectors).
  int64_t rows() const;
  int64_t columns() const;
};

class SafetensorsFile {
 public:
  // The largest header accepted: real headers are a few MB at most; more means a corrupt length.
  static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

  // Maps and parses the file; throws tessera::Error naming the file and the problem.
  static std::shared_ptr<const SafetensorsFile> open(const std::filesystem::path& path);
  // Parses an in-memory image (fuzzer, tests); the bytes must outlive the object.
  static std::shared_ptr<const SafetensorsFile> parse(std::span<const std::byte> bytes, std::string description);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& description() const { return description_; }  // the path, for messages
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // in header order
  const SafetensorsTensor* find(std::string_view name) const;                 // nullptr when absent
  const SafetensorsTensor& get(std::string_view name) const;                  // Error naming file and tensor

  std::span<const std::byte> tensor_bytes(const SafetensorsTensor& tensor) const;
  // Rows [row_begin, row_end) of the 2-D view, converted to f32, row-major into out.
  void read_rows(const SafetensorsTensor& tensor, int64_t row_begin, int64_t row_end, float* out) const;
  // Columns [col_begin, col_end) of every row, row-major into out (rows() * (col_end - col_begin) floats).
  void read_columns(const SafetensorsTensor& tensor, int64_t col_begin, int64_t col_end, float* out) const;

 private:
  SafetensorsFile() = default;
  struct Mapping;
  void parse_header();
  void check_readable(const SafetensorsTensor& tensor) const;

  std::string description_;
  std::unique_ptr<Mapping> mapping_;
  std::span<const std::byte> bytes_;
  uint64_t data_offset_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace tessera::runtime
