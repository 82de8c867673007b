#include "runtime/core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

namespace tessera {

DType parse_dtype(std::string_view name) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64, DType::U8}) {
    if (dtype_name(d) == name) return d;
  }
  fail("unknown dtype '", name, "' (expected f32, f16, bf16, i32, i64 or u8)");
}

Shape::Shape(std::initializer_list<int64_t> dims) {
  TESSERA_CHECK(dims.size() <= kMaxRank, "shape of rank ", dims.size(), " exceeds the maximum rank ", kMaxRank);
  for (int64_t d : dims) {
    TESSERA_CHECK(d >= 0, "negative dimension ", d, " in shape");
    dims_[rank_++] = d;
  }
}

Shape::Shape(const std::vector<int64_t>& dims) {
  TESSERA_CHECK(dims.size() <= kMaxRank, "shape of rank ", dims.size(), " exceeds the maximum rank ", kMaxRank);
  for (int64_t d : dims) {
    TESSERA_CHECK(d >= 0, "negative dimension ", d, " in shape");
    dims_[rank_++] = d;
  }
}

int64_t Shape::operator[](int axis) const {
  const int resolved = axis < 0 ? axis + rank_ : axis;
  TESSERA_CHECK(resolved >= 0 && resolved < rank_, "axis ", axis, " out of range for shape ", to_string());
  return dims_[resolved];
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) {
    TESSERA_CHECK(dims_[i] == 0 || n <= std::numeric_limits<int64_t>::max() / dims_[i],
                  "element count of shape ", to_string(), " overflows int64");
    n *= dims_[i];
  }
  return n;
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i) {
    if (dims_[i] != other.dims_[i]) return false;
  }
  return true;
}

std::string Shape::to_string() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

void Tensor::FreeAligned::operator()(std::byte* p) const { std::free(p); }

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(shape) {
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  const size_t rounded = (bytes + 63) / 64 * 64;
  auto* memory = static_cast<std::byte*>(std::aligned_alloc(64, rounded == 0 ? 64 : rounded));
  TESSERA_CHECK(memory != nullptr, "out of host memory allocating a ", dtype_name(dtype), " tensor of shape ",
                shape.to_string(), " (", bytes, " bytes)");
  std::memset(memory, 0, rounded == 0 ? 64 : rounded);
  data_.reset(memory);
  capacity_ = rounded == 0 ? 64 : rounded;
}

Tensor& Tensor::resize(DType dtype, Shape shape) {
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  if (empty() || bytes > capacity_) {
    *this = Tensor(dtype, shape);
    return *this;
  }
  dtype_ = dtype;
  shape_ = shape;
  return *this;
}

Tensor& Tensor::reshape(Shape shape) {
  TESSERA_CHECK(shape.numel() == shape_.numel(), "cannot reshape ", shape_.to_string(), " to ", shape.to_string(),
                ": element counts differ");
  shape_ = shape;
  return *this;
}

void Tensor::check_type(DType expected) const {
  TESSERA_CHECK(dtype_ == expected, "tensor holds ", dtype_name(dtype_), " but was accessed as ",
                dtype_name(expected));
}

}  // namespace tessera
