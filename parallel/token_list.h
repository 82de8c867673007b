#pragma once
// A step's new tokens: the one sampled token of a decode step, or a prompt chunk of a prefill step. Up to kInline
// tokens live inside the object, so a decode step's token is in the SequenceStep itself: a plan of a few hundred
// decode steps then has no separate allocation per step for the scheduler to fill, the encoder to read and the
// executor to gather, each of which missed the cache on its own line (benchmarks/plan_bench.cpp measures it).
// Longer lists live on the heap, whose capacity is kept across reuse (the scheduler recycles plans).
// A std::vector<int32_t> in all that the plan's users need of one: iteration, indexing, assign, equality.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <span>
#include <vector>

namespace tessera::parallel {

class TokenList {
 public:
  static constexpr size_t kInline = 5;  // with the size, as large as the heap vector beside it
  using value_type = int32_t;
  using iterator = int32_t*;
  using const_iterator = const int32_t*;

  TokenList() = default;
  TokenList(std::initializer_list<int32_t> tokens) { assign(tokens.begin(), tokens.end()); }
  TokenList(const std::vector<int32_t>& tokens) { assign(tokens.begin(), tokens.end()); }  // NOLINT: a list is its tokens

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const int32_t* data() const { return size_ <= kInline ? inline_ : heap_.data(); }
  int32_t* data() { return size_ <= kInline ? inline_ : heap_.data(); }
  const int32_t* begin() const { return data(); }
  const int32_t* end() const { return data() + size_; }
  int32_t* begin() { return data(); }
  int32_t* end() { return data() + size_; }
  int32_t operator[](size_t i) const { return data()[i]; }
  int32_t& operator[](size_t i) { return data()[i]; }
  int32_t back() const { return data()[size_ - 1]; }
  std::span<const int32_t> span() const { return {data(), size_}; }

  template <std::input_iterator Iterator>
  void assign(Iterator first, Iterator last) {
    const auto n = static_cast<size_t>(std::distance(first, last));
    if (n <= kInline) {
      std::copy(first, last, inline_);
    } else {
      heap_.assign(first, last);
    }
    size_ = static_cast<uint32_t>(n);
  }
  void assign(size_t n, int32_t value) {
    resize(0);
    resize(n, value);
  }
  void resize(size_t n, int32_t value = 0) {
    if (n <= kInline) {
      if (size_ > kInline) std::copy_n(heap_.data(), n, inline_);
      for (size_t i = size_; i < n; ++i) inline_[i] = value;
    } else {
      if (size_ <= kInline) heap_.assign(inline_, inline_ + size_);
      heap_.resize(n, value);
    }
    size_ = static_cast<uint32_t>(n);
  }
  void clear() { size_ = 0; }

  bool operator==(const TokenList& other) const { return std::ranges::equal(span(), other.span()); }
  friend bool operator==(const TokenList& a, const std::vector<int32_t>& b) { return std::ranges::equal(a.span(), b); }

 private:
  uint32_t size_ = 0;
  int32_t inline_[kInline] = {};
  std::vector<int32_t> heap_;  // the tokens while size_ > kInline
};

}  // namespace tessera::parallel
