#pragma once
// Builds small GGUF images in memory for tests: metadata of every value type and tensors with given bytes.
// Writes exactly the layout of the GGUF spec (and of gguf-py's writer), so a test can also corrupt any field.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::testing {

class GgufImageBuilder {
 public:
  explicit GgufImageBuilder(uint32_t version = 3, uint32_t alignment = 32) : version_(version), alignment_(alignment) {
    if (alignment != 32) add_u32("general.alignment", alignment);
  }

  // Raw key/value: `type` is the GGUF value type id and `payload` its encoding.
  void add_raw(std::string_view key, uint32_t type, const std::vector<std::byte>& payload) {
    std::vector<std::byte> kv;
    put_string(kv, key);
    put(kv, type);
    kv.insert(kv.end(), payload.begin(), payload.end());
    kvs_.push_back(std::move(kv));
  }
  template <class T>
  static std::vector<std::byte> encode(T value) {
    std::vector<std::byte> out;
    put(out, value);
    return out;
  }
  static std::vector<std::byte> encode_string(std::string_view text) {
    std::vector<std::byte> out;
    put_string(out, text);
    return out;
  }

  void add_u8(std::string_view key, uint8_t v) { add_raw(key, 0, encode(v)); }
  void add_i8(std::string_view key, int8_t v) { add_raw(key, 1, encode(v)); }
  void add_u16(std::string_view key, uint16_t v) { add_raw(key, 2, encode(v)); }
  void add_i16(std::string_view key, int16_t v) { add_raw(key, 3, encode(v)); }
  void add_u32(std::string_view key, uint32_t v) { add_raw(key, 4, encode(v)); }
  void add_i32(std::string_view key, int32_t v) { add_raw(key, 5, encode(v)); }
  void add_f32(std::string_view key, float v) { add_raw(key, 6, encode(v)); }
  void add_bool(std::string_view key, bool v) { add_raw(key, 7, encode(static_cast<uint8_t>(v))); }
  void add_string(std::string_view key, std::string_view v) { add_raw(key, 8, encode_string(v)); }
  void add_u64(std::string_view key, uint64_t v) { add_raw(key, 10, encode(v)); }
  void add_i64(std::string_view key, int64_t v) { add_raw(key, 11, encode(v)); }
  void add_f64(std::string_view key, double v) { add_raw(key, 12, encode(v)); }

  void add_string_array(std::string_view key, const std::vector<std::string>& values) {
    std::vector<std::byte> payload;
    put(payload, uint32_t{8});
    put(payload, static_cast<uint64_t>(values.size()));
    for (const auto& v : values) put_string(payload, v);
    add_raw(key, 9, payload);
  }
  template <class T>
  void add_array(std::string_view key, uint32_t element_type, const std::vector<T>& values) {
    std::vector<std::byte> payload;
    put(payload, element_type);
    put(payload, static_cast<uint64_t>(values.size()));
    for (const T& v : values) put(payload, v);
    add_raw(key, 9, payload);
  }

  // A tensor: dims in GGUF order (dims[0] = columns). Data is placed after the previous tensor, aligned,
  // unless an explicit offset is given.
  void add_tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, std::vector<std::byte> data,
                  int64_t explicit_offset = -1) {
    Tensor t{std::string(name), std::move(dims), type, std::move(data), 0};
    if (explicit_offset >= 0) {
      t.offset = static_cast<uint64_t>(explicit_offset);
    } else {
      t.offset = align(data_size_);
    }
    data_size_ = std::max<uint64_t>(data_size_, t.offset + t.data.size());
    tensors_.push_back(std::move(t));
  }

  std::vector<std::byte> build() const {
    std::vector<std::byte> out;
    put(out, uint32_t{0x46554747});
    put(out, version_);
    put(out, static_cast<uint64_t>(tensors_.size()));
    put(out, static_cast<uint64_t>(kvs_.size()));
    for (const auto& kv : kvs_) out.insert(out.end(), kv.begin(), kv.end());
    for (const Tensor& t : tensors_) {
      put_string(out, t.name);
      put(out, static_cast<uint32_t>(t.dims.size()));
      for (uint64_t d : t.dims) put(out, d);
      put(out, t.type);
      put(out, t.offset);
    }
    out.resize(align(out.size()));
    const size_t data_start = out.size();
    out.resize(data_start + align(data_size_));
    for (const Tensor& t : tensors_) {
      if (!t.data.empty()) std::memcpy(out.data() + data_start + t.offset, t.data.data(), t.data.size());
    }
    return out;
  }

  template <class T>
  static void put(std::vector<std::byte>& out, T value) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
  }
  static void put_string(std::vector<std::byte>& out, std::string_view text) {
    put(out, static_cast<uint64_t>(text.size()));
    const size_t at = out.size();
    out.resize(at + text.size());
    if (!text.empty()) std::memcpy(out.data() + at, text.data(), text.size());
  }

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    std::vector<std::byte> data;
    uint64_t offset;
  };
  uint64_t align(uint64_t n) const { return (n + alignment_ - 1) / alignment_ * alignment_; }

  uint32_t version_;
  uint32_t alignment_;
  std::vector<std::vector<std::byte>> kvs_;
  std::vector<Tensor> tensors_;
  uint64_t data_size_ = 0;
};

template <class T>
std::vector<std::byte> as_bytes_vector(const std::vector<T>& values) {
  std::vector<std::byte> out(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

}  // namespace tessera::testing
