#pragma once
// A sequence's KV cache block ids in position order, shared copy-on-write. The scheduler's sequence, each plan
// that runs it, the delta mirrors and every ForwardBatch built from a plan hold the same table; copying one is a
// reference count, and a decode step that appends no block copies and compares nothing (shares_storage_with), so
// the control plane's cost per sequence does not grow with its context length. A table is only ever changed
// through push_back/clear, which copy the blocks first while another table shares them: what a plan in flight
// holds never changes under it.
// Not thread-safe beyond shared_ptr's own guarantees: tables that share storage may live on different threads,
// one table object may not.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

namespace tessera::parallel {

class BlockTable {
 public:
  BlockTable() = default;
  BlockTable(std::vector<int32_t> blocks)  // NOLINT(google-explicit-constructor): a table is its blocks
      : blocks_(blocks.empty() ? nullptr : std::make_shared<std::vector<int32_t>>(std::move(blocks))) {}
  BlockTable(std::initializer_list<int32_t> blocks) : BlockTable(std::vector<int32_t>(blocks)) {}

  size_t size() const { return blocks_ ? blocks_->size() : 0; }
  bool empty() const { return size() == 0; }
  const int32_t* data() const { return blocks_ ? blocks_->data() : nullptr; }
  const int32_t* begin() const { return data(); }
  const int32_t* end() const { return data() + size(); }
  int32_t operator[](size_t i) const { return (*blocks_)[i]; }
  int32_t back() const { return blocks_->back(); }
  std::span<const int32_t> span() const { return {data(), size()}; }

  void push_back(int32_t block) {
    if (!blocks_) {
      blocks_ = std::make_shared<std::vector<int32_t>>();
    } else if (blocks_.use_count() > 1) {
      auto copy = std::make_shared<std::vector<int32_t>>();
      copy->reserve(blocks_->size() + 1);
      copy->assign(blocks_->begin(), blocks_->end());
      blocks_ = std::move(copy);
    }
    blocks_->push_back(block);
  }
  void clear() { blocks_.reset(); }

  // True when both hold one storage, which then has one content: equality without comparing the blocks.
  bool shares_storage_with(const BlockTable& other) const { return blocks_ == other.blocks_; }
  bool operator==(const BlockTable& other) const {
    return shares_storage_with(other) || std::equal(begin(), end(), other.begin(), other.end());
  }

 private:
  std::shared_ptr<std::vector<int32_t>> blocks_;  // null when empty; never changed while shared (use_count > 1)
};

}  // namespace tessera::parallel
