#pragma once
// The leader's bookkeeping of KV cache blocks. Only the leader allocates; the block tables reach the other ranks
// inside the StepPlan, so every rank of the replica writes a sequence's keys into the same blocks.
#include <cstdint>
#include <vector>

namespace tessera::runtime {

class KvBlockAllocator {
 public:
  explicit KvBlockAllocator(int num_blocks);
  int free_blocks() const { return static_cast<int>(free_.size()); }
  int total_blocks() const { return total_; }
  // Throws tessera::Error stating the numbers when fewer than `count` blocks are free.
  std::vector<int32_t> allocate(int count);
  void release(const std::vector<int32_t>& blocks);

 private:
  int total_;
  std::vector<int32_t> free_;  // a stack: recently freed blocks are reused first (warm in cache)
};

}  // namespace tessera::runtime
