#include "runtime/model/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr int kMaxDims = 4;                  // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 8;          // real files nest at most once; bounds the parser's recursion
// The largest real arrays are vocabularies (~256K tokens); each parsed element costs ~50 bytes of memory, so a
// lying count over a huge file must not turn into gigabytes of allocation.
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 24;

const char* value_type_name(GgufValue::Type type) {
  switch (type) {
    case GgufValue::Type::kUint8: return "uint8";
    case GgufValue::Type::kInt8: return "int8";
    case GgufValue::Type::kUint16: return "uint16";
    case GgufValue::Type::kInt16: return "int16";
    case GgufValue::Type::kUint32: return "uint32";
    case GgufValue::Type::kInt32: return "int32";
    case GgufValue::Type::kFloat32: return "float32";
    case GgufValue::Type::kBool: return "bool";
    case GgufValue::Type::kString: return "string";
    case GgufValue::Type::kArray: return "array";
    case GgufValue::Type::kUint64: return "uint64";
    case GgufValue::Type::kInt64: return "int64";
    case GgufValue::Type::kFloat64: return "float64";
  }
  return "unknown";
}

// Encoded size of a scalar value type; 0 for strings and arrays (variable length).
uint64_t scalar_size(GgufValue::Type type) {
  switch (type) {
    case GgufValue::Type::kUint8:
    case GgufValue::Type::kInt8:
    case GgufValue::Type::kBool: return 1;
    case GgufValue::Type::kUint16:
    case GgufValue::Type::kInt16: return 2;
    case GgufValue::Type::kUint32:
    case GgufValue::Type::kInt32:
    case GgufValue::Type::kFloat32: return 4;
    case GgufValue::Type::kUint64:
    case GgufValue::Type::kInt64:
    case GgufValue::Type::kFloat64: return 8;
    case GgufValue::Type::kString:
    case GgufValue::Type::kArray: return 0;
  }
  return 0;
}

// Smallest encoding of one element of the type: bounds an element count by the bytes that are left.
uint64_t min_encoded_size(GgufValue::Type type) {
  if (type == GgufValue::Type::kString) return 8;         // length
  if (type == GgufValue::Type::kArray) return 4 + 8;      // element type + count
  return scalar_size(type);
}

bool mul_overflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// GgufValue

std::optional<int64_t> GgufValue::as_int() const {
  if (const auto* u = std::get_if<uint64_t>(&value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  if (const auto* b = std::get_if<bool>(&value)) return *b ? 1 : 0;
  return std::nullopt;
}

std::optional<double> GgufValue::as_float() const {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&value)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  return std::nullopt;
}

const std::string* GgufValue::as_string() const { return std::get_if<std::string>(&value); }

const GgufArray* GgufValue::as_array() const {
  const auto* array = std::get_if<std::shared_ptr<GgufArray>>(&value);
  return array != nullptr ? array->get() : nullptr;
}

int64_t GgufTensorInfo::rows() const {
  int64_t rows = 1;
  for (size_t i = 1; i < dims.size(); ++i) rows *= dims[i];  // overflow ruled out at parse time
  return rows;
}

int64_t GgufTensorInfo::columns() const { return dims.empty() ? 1 : dims[0]; }

// ---------------------------------------------------------------------------------------------------------
// The read-only mapping of a file.

struct GgufFile::Mapping {
  void* address = nullptr;
  size_t size = 0;

  explicit Mapping(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    TESSERA_CHECK(fd >= 0, path.string(), ": cannot open GGUF file: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      fail(path.string(), ": cannot stat GGUF file: ", std::strerror(err));
    }
    size = static_cast<size_t>(st.st_size);
    if (size == 0) {
      ::close(fd);
      fail(path.string(), ": GGUF file is empty");
    }
    address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);  // the mapping keeps its own reference to the file
    if (address == MAP_FAILED) {
      address = nullptr;
      fail(path.string(), ": cannot mmap GGUF file (", size, " bytes): ", std::strerror(err));
    }
  }
  ~Mapping() {
    if (address != nullptr) ::munmap(address, size);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(address), size}; }
};

// ---------------------------------------------------------------------------------------------------------
// The parser: a cursor over the image that checks every read against the end.

class GgufFile::Parser {
 public:
  explicit Parser(GgufFile& file) : file_(file), bytes_(file.bytes_) {}

  void parse() {
    const uint32_t magic = read_u32("magic");
    TESSERA_CHECK(magic == kGgufMagic, where(), ": not a GGUF file (magic 0x", std::hex, magic, ", expected 0x",
                  kGgufMagic, " \"GGUF\")");
    file_.version_ = read_u32("version");
    TESSERA_CHECK(file_.version_ != 1, where(), ": GGUF version 1 is not supported (re-convert the model)");
    TESSERA_CHECK(file_.version_ != 0x02000000 && file_.version_ != 0x03000000, where(),
                  ": big-endian GGUF files are not supported");
    TESSERA_CHECK(file_.version_ == 2 || file_.version_ == 3, where(), ": unsupported GGUF version ",
                  file_.version_, " (expected 2 or 3)");
    const uint64_t tensor_count = read_u64("tensor count");
    const uint64_t kv_count = read_u64("metadata count");
    // A lying count must not make us allocate: each entry takes at least this many bytes of what is left.
    TESSERA_CHECK(kv_count <= remaining() / (8 + 4), where(), ": metadata count ", kv_count,
                  " cannot fit in the ", remaining(), " bytes left");
    for (uint64_t i = 0; i < kv_count; ++i) read_key_value(i);
    TESSERA_CHECK(tensor_count <= remaining() / (8 + 4 + 8 + 4 + 8), where(), ": tensor count ", tensor_count,
                  " cannot fit in the ", remaining(), " bytes left");
    apply_alignment();
    file_.tensors_.reserve(tensor_count);
    for (uint64_t i = 0; i < tensor_count; ++i) read_tensor_info(i);
    locate_data();
  }

 private:
  std::string where() const { return concat(file_.description_, " (offset ", pos_, ")"); }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  void need(uint64_t n, const char* what) {
    TESSERA_CHECK(n <= remaining(), file_.description_, ": truncated GGUF file: ", what, " needs ", n,
                  " bytes at offset ", pos_, " but the file has ", bytes_.size(), " bytes");
  }
  template <class T>
  T read_scalar(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  uint32_t read_u32(const char* what) { return read_scalar<uint32_t>(what); }
  uint64_t read_u64(const char* what) { return read_scalar<uint64_t>(what); }

  std::string read_string(const char* what) {
    const uint64_t length = read_u64(what);
    need(length, what);
    std::string text(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return text;
  }

  GgufValue::Type read_type(const std::string& key) {
    const uint64_t at = pos_;
    const uint32_t id = read_u32("value type");
    TESSERA_CHECK(id <= static_cast<uint32_t>(GgufValue::Type::kFloat64), file_.description_,
                  ": metadata key '", key, "' has unknown value type ", id, " at offset ", at);
    return static_cast<GgufValue::Type>(id);
  }

  GgufValue read_value(GgufValue::Type type, const std::string& key, int depth) {
    GgufValue out;
    out.type = type;
    switch (type) {
      case GgufValue::Type::kUint8: out.value = uint64_t{read_scalar<uint8_t>("uint8 value")}; break;
      case GgufValue::Type::kInt8: out.value = int64_t{read_scalar<int8_t>("int8 value")}; break;
      case GgufValue::Type::kUint16: out.value = uint64_t{read_scalar<uint16_t>("uint16 value")}; break;
      case GgufValue::Type::kInt16: out.value = int64_t{read_scalar<int16_t>("int16 value")}; break;
      case GgufValue::Type::kUint32: out.value = uint64_t{read_scalar<uint32_t>("uint32 value")}; break;
      case GgufValue::Type::kInt32: out.value = int64_t{read_scalar<int32_t>("int32 value")}; break;
      case GgufValue::Type::kUint64: out.value = read_scalar<uint64_t>("uint64 value"); break;
      case GgufValue::Type::kInt64: out.value = read_scalar<int64_t>("int64 value"); break;
      case GgufValue::Type::kFloat32: out.value = static_cast<double>(read_scalar<float>("float32 value")); break;
      case GgufValue::Type::kFloat64: out.value = read_scalar<double>("float64 value"); break;
      case GgufValue::Type::kBool: {
        const uint64_t at = pos_;
        const uint8_t b = read_scalar<uint8_t>("bool value");
        TESSERA_CHECK(b <= 1, file_.description_, ": metadata key '", key, "' has bool value ", int{b},
                      " at offset ", at, " (expected 0 or 1)");
        out.value = b == 1;
        break;
      }
      case GgufValue::Type::kString: out.value = read_string("string value"); break;
      case GgufValue::Type::kArray: {
        TESSERA_CHECK(depth < kMaxArrayNesting, where(), ": metadata key '", key, "' nests arrays deeper than ",
                      kMaxArrayNesting);
        out.element_type = read_type(key);
        const uint64_t count = read_u64("array length");
        const uint64_t min_size = min_encoded_size(out.element_type);
        TESSERA_CHECK(count <= remaining() / min_size, where(), ": metadata key '", key, "' claims ", count,
                      " ", value_type_name(out.element_type), " elements but only ", remaining(),
                      " bytes are left");
        TESSERA_CHECK(count <= kMaxArrayElements, where(), ": metadata key '", key, "' claims ", count,
                      " elements (more than the ", kMaxArrayElements, " Tessera accepts)");
        auto array = std::make_shared<GgufArray>();
        array->reserve(count);
        for (uint64_t i = 0; i < count; ++i) array->push_back(read_value(out.element_type, key, depth + 1));
        out.value = std::move(array);
        break;
      }
    }
    return out;
  }

  void read_key_value(uint64_t index) {
    std::string key = read_string("metadata key");
    TESSERA_CHECK(!key.empty(), where(), ": metadata entry ", index, " has an empty key");
    const GgufValue::Type type = read_type(key);
    GgufValue value = read_value(type, key, 0);
    TESSERA_CHECK(!file_.metadata_.contains(key), where(), ": duplicate metadata key '", key, "'");
    file_.metadata_.emplace(std::move(key), std::move(value));
  }

  void apply_alignment() {
    const GgufValue* alignment = file_.find("general.alignment");
    if (alignment == nullptr) return;
    TESSERA_CHECK(alignment->type == GgufValue::Type::kUint32, file_.description_,
                  ": general.alignment must be uint32, found ", value_type_name(alignment->type));
    const uint64_t value = std::get<uint64_t>(alignment->value);
    TESSERA_CHECK(value != 0 && (value & (value - 1)) == 0, file_.description_,
                  ": general.alignment must be a power of two, found ", value);
    file_.alignment_ = value;
  }

  void read_tensor_info(uint64_t index) {
    GgufTensorInfo info;
    info.name = read_string("tensor name");
    const std::string context = concat(file_.description_, ": tensor '", info.name, "' (#", index, ")");
    TESSERA_CHECK(!file_.tensor_index_.contains(info.name), context, " is listed twice");
    const uint32_t n_dims = read_u32("tensor dimension count");
    TESSERA_CHECK(n_dims >= 1 && n_dims <= kMaxDims, context, " has ", n_dims, " dimensions (expected 1 to ",
                  kMaxDims, ")");
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = read_u64("tensor dimension");
      TESSERA_CHECK(dim > 0 && dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), context,
                    " has dimension ", d, " = ", dim, " (expected > 0)");
      info.dims.push_back(static_cast<int64_t>(dim));
      TESSERA_CHECK(!mul_overflows(elements, static_cast<int64_t>(dim), &elements), context,
                    " has an element count that overflows int64");
    }
    const uint32_t type_id = read_u32("tensor type");
    const auto traits = ggml_type_traits(type_id);
    TESSERA_CHECK(traits.has_value(), context, " has unknown ggml type id ", type_id);
    info.type = static_cast<GgmlType>(type_id);
    TESSERA_CHECK(info.dims[0] % traits->block_elements == 0, context, " has ", info.dims[0],
                  " columns, not a multiple of the ", traits->name, " block size ", traits->block_elements);
    int64_t nbytes = 0;
    TESSERA_CHECK(!mul_overflows(elements / traits->block_elements, traits->block_bytes, &nbytes), context,
                  " has a byte size that overflows int64");
    info.nbytes = static_cast<uint64_t>(nbytes);
    info.offset = read_u64("tensor data offset");
    TESSERA_CHECK(info.offset % file_.alignment_ == 0, context, " has data offset ", info.offset,
                  " not aligned to ", file_.alignment_);
    file_.tensor_index_.emplace(info.name, file_.tensors_.size());
    file_.tensors_.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment; every tensor must lie inside the file
  // and no two may overlap.
  void locate_data() {
    const uint64_t size = bytes_.size();
    const uint64_t padding = (file_.alignment_ - pos_ % file_.alignment_) % file_.alignment_;
    file_.data_offset_ = pos_ + padding;  // pos_ <= size, padding < alignment <= 2^32: no overflow
    if (file_.tensors_.empty()) return;
    TESSERA_CHECK(file_.data_offset_ <= size, file_.description_, ": tensor data section starts at ",
                  file_.data_offset_, " past the end of the file (", size, " bytes)");
    const uint64_t data_size = size - file_.data_offset_;
    std::vector<const GgufTensorInfo*> by_offset;
    by_offset.reserve(file_.tensors_.size());
    for (const GgufTensorInfo& t : file_.tensors_) {
      TESSERA_CHECK(t.offset <= data_size && t.nbytes <= data_size - t.offset, file_.description_,
                    ": tensor '", t.name, "' data [", t.offset, ", +", t.nbytes, ") lies past the end of the ",
                    data_size, "-byte data section (file truncated?)");
      by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const GgufTensorInfo& prev = *by_offset[i - 1];
      const GgufTensorInfo& cur = *by_offset[i];
      TESSERA_CHECK(cur.offset >= prev.offset + prev.nbytes, file_.description_, ": tensor '", cur.name,
                    "' data at offset ", cur.offset, " overlaps tensor '", prev.name, "' [", prev.offset, ", +",
                    prev.nbytes, ")");
    }
  }

  GgufFile& file_;
  std::span<const std::byte> bytes_;
  uint64_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------------------
// GgufFile

GgufFile::~GgufFile() = default;

std::shared_ptr<const GgufFile> GgufFile::open(const std::filesystem::path& path) {
  std::shared_ptr<GgufFile> file(new GgufFile());
  file->description_ = path.string();
  file->mapping_ = std::make_unique<Mapping>(path);
  file->bytes_ = file->mapping_->bytes();
  Parser(*file).parse();
  return file;
}

std::shared_ptr<const GgufFile> GgufFile::parse(std::span<const std::byte> bytes, std::string description) {
  std::shared_ptr<GgufFile> file(new GgufFile());
  file->description_ = std::move(description);
  file->bytes_ = bytes;
  Parser(*file).parse();
  return file;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const std::string* text = value->as_string();
  TESSERA_CHECK(text != nullptr, description_, ": metadata key '", key, "' should be a string, found ",
                value_type_name(value->type));
  return *text;
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  TESSERA_CHECK(value->type != GgufValue::Type::kBool, description_, ": metadata key '", key,
                "' should be an integer, found bool");
  const auto number = value->as_int();
  TESSERA_CHECK(number.has_value(), description_, ": metadata key '", key,
                "' should be an integer (int64 range), found ",
                value_type_name(value->type));
  return number;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const auto number = value->type == GgufValue::Type::kBool ? std::nullopt : value->as_float();
  TESSERA_CHECK(number.has_value(), description_, ": metadata key '", key, "' should be a number, found ",
                value_type_name(value->type));
  return number;
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return std::nullopt;
  const bool* flag = std::get_if<bool>(&value->value);
  TESSERA_CHECK(flag != nullptr, description_, ": metadata key '", key, "' should be a bool, found ",
                value_type_name(value->type));
  return *flag;
}

namespace {
const GgufArray* expect_array(const GgufValue* value, const std::string& description, std::string_view key) {
  if (value == nullptr) return nullptr;
  const GgufArray* array = value->as_array();
  TESSERA_CHECK(array != nullptr, description, ": metadata key '", key, "' should be an array, found ",
                value_type_name(value->type));
  return array;
}
}  // namespace

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const GgufArray* array = expect_array(find(key), description_, key);
  std::vector<std::string> out;
  if (array == nullptr) return out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string* text = (*array)[i].as_string();
    TESSERA_CHECK(text != nullptr, description_, ": metadata key '", key, "' element ", i,
                  " should be a string, found ", value_type_name((*array)[i].type));
    out.push_back(*text);
  }
  return out;
}

std::vector<double> GgufFile::get_float_array(std::string_view key) const {
  const GgufArray* array = expect_array(find(key), description_, key);
  std::vector<double> out;
  if (array == nullptr) return out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    const GgufValue& element = (*array)[i];
    const auto number = element.type == GgufValue::Type::kBool ? std::nullopt : element.as_float();
    TESSERA_CHECK(number.has_value(), description_, ": metadata key '", key, "' element ", i,
                  " should be a number, found ", value_type_name(element.type));
    out.push_back(*number);
  }
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufArray* array = expect_array(find(key), description_, key);
  std::vector<int64_t> out;
  if (array == nullptr) return out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    const GgufValue& element = (*array)[i];
    const auto number = element.type == GgufValue::Type::kBool ? std::nullopt : element.as_int();
    TESSERA_CHECK(number.has_value(), description_, ": metadata key '", key, "' element ", i,
                  " should be an integer, found ", value_type_name(element.type));
    out.push_back(*number);
  }
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::byte> GgufFile::tensor_bytes(const GgufTensorInfo& tensor) const {
  return bytes_.subspan(data_offset_ + tensor.offset, tensor.nbytes);
}

}  // namespace tessera::runtime
