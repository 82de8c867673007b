#pragma once
// A host tensor that owns its memory (64-byte aligned for SIMD and BLAS). Device tensors belong to the
// backend targets; this one is what the CPU backend computes on and what weight readers fill.
#include <cstddef>
#include <memory>
#include <span>

#include "kernels/base/error.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace tessera {

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);  // zero-filled

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  // A default-constructed (empty) tensor holds no memory: 0 bytes, although its rank-0 shape counts 1 element.
  size_t nbytes() const { return empty() ? 0 : static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return data_ == nullptr; }

  void* raw() { return data_.get(); }
  const void* raw() const { return data_.get(); }

  // Typed access; throws when T does not match the dtype's element size and kind.
  template <class T>
  T* data();
  template <class T>
  const T* data() const;
  template <class T>
  std::span<T> span() { return {data<T>(), static_cast<size_t>(numel())}; }
  template <class T>
  std::span<const T> span() const { return {data<T>(), static_cast<size_t>(numel())}; }

  // Same bytes, new shape with the same element count.
  Tensor& reshape(Shape shape);
  // For scratch that every use overwrites: gives the tensor `dtype` and `shape`, keeping its allocation when the
  // bytes fit in it (the contents are then stale, not zeroed) and reallocating zero-filled when they do not.
  // Steps of varying batch size then reuse one allocation instead of a fresh multi-megabyte one each.
  Tensor& resize(DType dtype, Shape shape);

 private:
  struct FreeAligned {
    void operator()(std::byte* p) const;
  };
  void check_type(DType expected) const;

  DType dtype_ = DType::F32;
  Shape shape_;
  size_t capacity_ = 0;  // bytes allocated, at least nbytes()
  std::unique_ptr<std::byte[], FreeAligned> data_;
};

template <class T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }

template <class T>
T* Tensor::data() {
  check_type(dtype_of<T>());
  return reinterpret_cast<T*>(data_.get());
}
template <class T>
const T* Tensor::data() const {
  check_type(dtype_of<T>());
  return reinterpret_cast<const T*>(data_.get());
}

}  // namespace tessera
