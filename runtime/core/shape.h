#pragma once
// A tensor shape: up to 4 dimensions, outermost first (row-major, PyTorch order).
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace tessera {

class Shape {
 public:
  static constexpr int kMaxRank = 4;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);  // throws on rank > 4 or a negative dimension
  explicit Shape(const std::vector<int64_t>& dims);

  int rank() const { return rank_; }
  int64_t operator[](int axis) const;           // negative axis counts from the end
  int64_t numel() const;                        // throws when the product overflows int64
  bool operator==(const Shape& other) const;
  std::string to_string() const;                // "[2, 3]"

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

}  // namespace tessera
