#include "runtime/engine/block_allocator.h"

#include "kernels/base/error.h"

namespace tessera::runtime {

KvBlockAllocator::KvBlockAllocator(int num_blocks) : total_(num_blocks) {
  TESSERA_CHECK(num_blocks > 0, "the KV cache needs at least one block, got ", num_blocks);
  for (int b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

std::vector<int32_t> KvBlockAllocator::allocate(int count) {
  TESSERA_CHECK(count >= 0 && count <= free_blocks(), "KV cache exhausted: need ", count, " blocks, ", free_blocks(),
                " of ", total_, " free");
  std::vector<int32_t> blocks(free_.end() - count, free_.end());
  free_.resize(free_.size() - static_cast<size_t>(count));
  return blocks;
}

void KvBlockAllocator::release(const std::vector<int32_t>& blocks) {
  for (int32_t b : blocks) {
    TESSERA_CHECK(b >= 0 && b < total_, "releasing KV block ", b, " outside [0, ", total_, ")");
    free_.push_back(b);
  }
  TESSERA_CHECK(free_blocks() <= total_, "KV blocks released twice");
}

}  // namespace tessera::runtime
