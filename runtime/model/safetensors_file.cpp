#include "runtime/model/safetensors_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

using nlohmann::json;

// Real headers nest three deep ({name: {shape: [...]}}); the limit keeps hostile input from building (and
// recursively destroying) arbitrarily deep JSON.
constexpr int kMaxJsonDepth = 16;

int64_t checked_dim(const std::string& where, const json& value) {
  TESSERA_CHECK(value.is_number_integer(), where, ": shape entries must be integers, found ", value.dump());
  if (value.is_number_unsigned()) {
    const uint64_t dim = value.get<uint64_t>();
    TESSERA_CHECK(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": dimension ", dim,
                  " overflows");
    return static_cast<int64_t>(dim);
  }
  const int64_t dim = value.get<int64_t>();
  TESSERA_CHECK(dim >= 0, where, ": negative dimension ", dim);
  return dim;
}

}  // namespace

// The file mapping: unmapped when the SafetensorsFile goes away.
struct SafetensorsFile::Mapping {
  void* address = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (address != nullptr) ::munmap(address, size);
  }
};

int64_t SafetensorsTensor::numel() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;  // validated not to overflow at parse time
  return count;
}

int64_t SafetensorsTensor::rows() const {
  if (shape.size() <= 1) return shape.empty() ? 1 : shape[0];
  int64_t count = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) count *= shape[i];
  return count;
}

int64_t SafetensorsTensor::columns() const { return shape.size() <= 1 ? 1 : shape.back(); }

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string description = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  TESSERA_CHECK(fd >= 0, "cannot open safetensors file ", description, ": ", std::strerror(errno));
  struct stat status {};
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    ::close(fd);
    fail("safetensors file ", description, " is not a regular file");
  }
  auto mapping = std::make_unique<Mapping>();
  mapping->size = static_cast<size_t>(status.st_size);
  if (mapping->size > 0) {
    void* address = ::mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (address == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      fail("cannot memory-map safetensors file ", description, ": ", std::strerror(error));
    }
    mapping->address = address;
  }
  ::close(fd);  // the mapping keeps the file alive

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->description_ = description;
  file->bytes_ = {static_cast<const std::byte*>(mapping->address), mapping->size};
  file->mapping_ = std::move(mapping);
  file->parse_header();
  return file;
}

std::shared_ptr<const SafetensorsFile> SafetensorsFile::parse(std::span<const std::byte> bytes,
                                                              std::string description) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->description_ = std::move(description);
  file->bytes_ = bytes;
  file->parse_header();
  return file;
}

SafetensorsFile::~SafetensorsFile() = default;

void SafetensorsFile::parse_header() {
  const std::string& file = description_;
  TESSERA_CHECK(bytes_.size() >= 8, file, ": not a safetensors file: ", bytes_.size(),
                " bytes, fewer than the 8-byte header length");
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | static_cast<uint8_t>(bytes_[i]);
  TESSERA_CHECK(header_bytes <= kMaxHeaderBytes, file, ": header length ", header_bytes,
                " is absurd (more than ", kMaxHeaderBytes, " bytes): not a safetensors file or corrupt");
  TESSERA_CHECK(header_bytes <= bytes_.size() - 8, file, ": header length ", header_bytes,
                " runs past the end of the file (", bytes_.size(), " bytes): truncated?");
  data_offset_ = 8 + header_bytes;
  const uint64_t data_bytes = bytes_.size() - data_offset_;

  const char* text = reinterpret_cast<const char*>(bytes_.data() + 8);
  std::set<std::string, std::less<>> keys;
  const json::parser_callback_t guard = [&](int depth, json::parse_event_t event, json& parsed) {
    TESSERA_CHECK(depth <= kMaxJsonDepth, file, ": header JSON nested deeper than ", kMaxJsonDepth);
    if (event == json::parse_event_t::key && depth == 1) {
      const auto& key = parsed.get_ref<const std::string&>();
      TESSERA_CHECK(keys.insert(key).second, file, ": tensor '", key, "' appears twice in the header");
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, text + header_bytes, guard);
  } catch (const json::exception& error) {
    fail(file, ": header is not valid JSON: ", error.what());
  }
  TESSERA_CHECK(header.is_object(), file, ": header JSON is a ", header.type_name(), ", not an object");

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {  // free-form string map; nothing Tessera needs
      TESSERA_CHECK(entry.is_object(), file, ": __metadata__ is a ", entry.type_name(), ", not an object");
      continue;
    }
    const std::string where = concat(file, ": tensor '", name, "'");
    TESSERA_CHECK(entry.is_object(), where, ": entry is a ", entry.type_name(), ", not an object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    TESSERA_CHECK(dtype_it != entry.end() && dtype_it->is_string(), where, ": missing string 'dtype'");
    TESSERA_CHECK(shape_it != entry.end() && shape_it->is_array(), where, ": missing array 'shape'");
    TESSERA_CHECK(offsets_it != entry.end() && offsets_it->is_array(), where, ": missing array 'data_offsets'");

    SafetensorsTensor tensor;
    tensor.name = name;
    const auto& dtype_name = dtype_it->get_ref<const std::string&>();
    const auto dtype = parse_safetensors_dtype(dtype_name);
    TESSERA_CHECK(dtype.has_value(), where, ": unknown dtype '", dtype_name, "'");
    tensor.dtype = *dtype;

    // Bytes = dims x element size; the product of the non-zero dims must fit too, so that no view of an
    // empty tensor (rows x columns) can overflow later.
    const auto element_bytes = static_cast<uint64_t>(safetensors_dtype_traits(tensor.dtype).bytes);
    uint64_t expected_bytes = element_bytes;
    uint64_t nonzero_bytes = element_bytes;
    for (const json& value : *shape_it) {
      const int64_t dim = checked_dim(where, value);
      tensor.shape.push_back(dim);
      const bool overflow =
          __builtin_mul_overflow(nonzero_bytes, static_cast<uint64_t>(std::max<int64_t>(dim, 1)), &nonzero_bytes) ||
          nonzero_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      TESSERA_CHECK(!overflow, where, ": shape ", shape_it->dump(), " overflows 64 bits");
      expected_bytes *= static_cast<uint64_t>(dim);  // <= nonzero_bytes
    }

    const json& offsets = *offsets_it;
    TESSERA_CHECK(offsets.size() == 2 && offsets[0].is_number_unsigned() && offsets[1].is_number_unsigned(),
                  where, ": data_offsets must be [begin, end] non-negative integers, found ", offsets.dump());
    tensor.begin = offsets[0].get<uint64_t>();
    tensor.end = offsets[1].get<uint64_t>();
    TESSERA_CHECK(tensor.begin <= tensor.end, where, ": data_offsets [", tensor.begin, ", ", tensor.end,
                  "] begin after end");
    TESSERA_CHECK(tensor.end <= data_bytes, where, ": data_offsets [", tensor.begin, ", ", tensor.end,
                  "] run past the data section (", data_bytes, " bytes): truncated?");
    TESSERA_CHECK(tensor.end - tensor.begin == expected_bytes, where, ": data_offsets [", tensor.begin, ", ",
                  tensor.end, "] hold ", tensor.end - tensor.begin, " bytes but shape ", shape_it->dump(), " of ",
                  dtype_name, " needs ", expected_bytes);
    tensors_.push_back(std::move(tensor));
  }

  // The data section must be tiled exactly, in offset order: no overlap (two tensors sharing bytes),
  // no gap and no trailing bytes (the reference implementation rejects both).
  std::vector<const SafetensorsTensor*> by_offset;
  for (const auto& tensor : tensors_) by_offset.push_back(&tensor);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t position = 0;
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor* tensor : by_offset) {
    TESSERA_CHECK(tensor->begin >= position, file, ": tensor '", tensor->name, "' [", tensor->begin, ", ",
                  tensor->end, ") overlaps tensor '", previous ? previous->name : "", "' ending at ", position);
    TESSERA_CHECK(tensor->begin == position, file, ": gap of ", tensor->begin - position,
                  " bytes in the data section before tensor '", tensor->name, "' at ", tensor->begin);
    position = tensor->end;
    previous = tensor;
  }
  TESSERA_CHECK(position == data_bytes, file, ": data section holds ", data_bytes, " bytes but its tensors cover ",
                position);

  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsFile::get(std::string_view name) const {
  const SafetensorsTensor* tensor = find(name);
  TESSERA_CHECK(tensor != nullptr, description_, ": no tensor '", name, "'");
  return *tensor;
}

std::span<const std::byte> SafetensorsFile::tensor_bytes(const SafetensorsTensor& tensor) const {
  return bytes_.subspan(data_offset_ + tensor.begin, tensor.end - tensor.begin);
}

void SafetensorsFile::check_readable(const SafetensorsTensor& tensor) const {
  TESSERA_CHECK(find(tensor.name) == &tensor, description_, ": tensor '", tensor.name,
                "' does not belong to this file");
  const auto traits = safetensors_dtype_traits(tensor.dtype);
  TESSERA_CHECK(traits.decodable, description_, ": tensor '", tensor.name, "' has dtype ", traits.name,
                ", which cannot be read as f32 weights");
}

void SafetensorsFile::read_rows(const SafetensorsTensor& tensor, int64_t row_begin, int64_t row_end,
                                float* out) const {
  check_readable(tensor);
  TESSERA_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= tensor.rows(), description_, ": tensor '",
                tensor.name, "': row range [", row_begin, ", ", row_end, ") outside its ", tensor.rows(), " rows");
  const int64_t element_bytes = safetensors_dtype_traits(tensor.dtype).bytes;
  const int64_t columns = tensor.columns();
  const std::byte* first = tensor_bytes(tensor).data() + row_begin * columns * element_bytes;
  decode_to_f32(tensor.dtype, first, (row_end - row_begin) * columns, out);
}

void SafetensorsFile::read_columns(const SafetensorsTensor& tensor, int64_t col_begin, int64_t col_end,
                                   float* out) const {
  check_readable(tensor);
  const int64_t columns = tensor.columns();
  TESSERA_CHECK(0 <= col_begin && col_begin <= col_end && col_end <= columns, description_, ": tensor '",
                tensor.name, "': column range [", col_begin, ", ", col_end, ") outside its ", columns, " columns");
  const int64_t element_bytes = safetensors_dtype_traits(tensor.dtype).bytes;
  const int64_t width = col_end - col_begin;
  const std::byte* data = tensor_bytes(tensor).data();
  for (int64_t row = 0; row < tensor.rows(); ++row) {
    decode_to_f32(tensor.dtype, data + (row * columns + col_begin) * element_bytes, width, out + row * width);
  }
}

}  // namespace tessera::runtime
