#pragma once
// Little-endian byte writer and bounds-checked reader for control-plane messages: fixed-width values, vectors (a
// u32 count, then the elements) and LEB128 varints (7 bits a byte, low bits first; the reader rejects overlong and
// too wide encodings, so that every value has exactly one encoding).
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/base/error.h"

namespace tessera::parallel {

static_assert(std::endian::native == std::endian::little, "the wire format assumes a little-endian host");

class WireWriter {
 public:
  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    append(&value, sizeof(T));
  }
  template <class T>
  void put_vector(const std::vector<T>& values) {
    put_span(std::span<const T>(values));
  }
  template <class T>
  void put_span(std::span<const T> values) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint32_t>(static_cast<uint32_t>(values.size()));
    append(values.data(), values.size() * sizeof(T));
  }
  void put_varint(uint64_t value) {
    while (value >= 0x80) {
      bytes_.push_back(static_cast<std::byte>((value & 0x7f) | 0x80));
      value >>= 7;
    }
    bytes_.push_back(static_cast<std::byte>(value));
  }
  void reserve(size_t n) { bytes_.reserve(n); }
  size_t size() const { return bytes_.size(); }
  std::vector<std::byte> take() { return std::move(bytes_); }

 private:
  void append(const void* data, size_t n) {
    if (n == 0) return;
    const size_t old_size = bytes_.size();
    bytes_.resize(old_size + n);
    std::memcpy(bytes_.data() + old_size, data, n);
  }
  std::vector<std::byte> bytes_;
};

class WireReader {
 public:
  WireReader(std::span<const std::byte> bytes, const char* what) : bytes_(bytes), what_(what) {}

  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    require(sizeof(T));
    T value;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }
  template <class T>
  std::vector<T> get_vector() {
    const uint32_t count = get<uint32_t>();
    require(static_cast<size_t>(count) * sizeof(T));
    std::vector<T> values(count);
    if (count == 0) return values;  // memcpy's pointers must not be null, even for zero bytes
    std::memcpy(values.data(), bytes_.data() + offset_, static_cast<size_t>(count) * sizeof(T));
    offset_ += static_cast<size_t>(count) * sizeof(T);
    return values;
  }
  // A varint of at most `bits` significant bits (1 to 64).
  uint64_t get_varint(int bits = 64) {
    uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      require(1);
      const auto byte = static_cast<uint8_t>(bytes_[offset_]);
      const uint64_t low = byte & 0x7fu;
      TESSERA_CHECK(shift < bits && (low >> (bits - shift < 7 ? bits - shift : 7)) == 0, "malformed ", what_,
                    ": a varint at offset ", offset_, " exceeds ", bits, " bits");
      TESSERA_CHECK(byte != 0 || shift == 0, "malformed ", what_, ": overlong varint at offset ", offset_);
      value |= low << shift;
      ++offset_;
      if ((byte & 0x80u) == 0) return value;
    }
  }
  bool at_end() const { return offset_ == bytes_.size(); }
  size_t offset() const { return offset_; }
  size_t remaining() const { return bytes_.size() - offset_; }

 private:
  void require(size_t n) const {
    TESSERA_CHECK(n <= bytes_.size() - offset_, "truncated ", what_, ": need ", n, " bytes at offset ", offset_,
                  " of ", bytes_.size());
  }
  std::span<const std::byte> bytes_;
  const char* what_;
  size_t offset_ = 0;
};

}  // namespace tessera::parallel
