#include "runtime/engine/kv_block_manager.h"

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

// Runs before any member is built from the counts.
int checked_block_count(int num_blocks, int block_size) {
  TESSERA_CHECK(num_blocks >= 1, "the KV cache needs at least one block, got ", num_blocks);
  TESSERA_CHECK(block_size >= 1, "KV block size must be >= 1, got ", block_size);
  return num_blocks;
}

}  // namespace

KvBlockManager::KvBlockManager(int num_blocks, int block_size, bool prefix_caching)
    : block_size_(block_size), prefix_caching_(prefix_caching),
      cache_(checked_block_count(num_blocks, block_size), block_size) {
  const auto n = static_cast<size_t>(num_blocks);
  ref_.assign(n, 0);
  prev_.assign(n, kNone);
  next_.assign(n, kNone);
  in_free_.assign(n, 0);
  for (int32_t b = 0; b < num_blocks; ++b) push_free(b);
}

void KvBlockManager::push_free(int32_t b) {
  const auto i = static_cast<size_t>(b);
  prev_[i] = tail_;
  next_[i] = kNone;
  if (tail_ != kNone) next_[static_cast<size_t>(tail_)] = b;
  tail_ = b;
  if (head_ == kNone) head_ = b;
  in_free_[i] = 1;
  ++free_count_;
}

void KvBlockManager::unlink_free(int32_t b) {
  const auto i = static_cast<size_t>(b);
  if (prev_[i] != kNone) next_[static_cast<size_t>(prev_[i])] = next_[i]; else head_ = next_[i];
  if (next_[i] != kNone) prev_[static_cast<size_t>(next_[i])] = prev_[i]; else tail_ = prev_[i];
  prev_[i] = next_[i] = kNone;
  in_free_[i] = 0;
  --free_count_;
}

std::optional<int32_t> KvBlockManager::allocate() {
  if (head_ == kNone) return std::nullopt;
  const int32_t b = head_;
  unlink_free(b);
  cache_.erase_block(b);  // evicted: its old tokens are about to be overwritten
  ref_[static_cast<size_t>(b)] = 1;
  return b;
}

void KvBlockManager::release(std::span<const int32_t> blocks) {
  for (const int32_t b : blocks) {
    TESSERA_CHECK(b >= 0 && b < total_blocks() && ref_[static_cast<size_t>(b)] > 0, "KV block ", b,
                  " released but not in use");
    if (--ref_[static_cast<size_t>(b)] == 0) {
      if (!prefix_caching_) cache_.erase_block(b);
      push_free(b);
    }
  }
}

int KvBlockManager::count_prefix(std::span<const int32_t> tokens, int max_blocks) const {
  if (!prefix_caching_) return 0;
  uint64_t parent = PrefixCache::kRootHash;
  int found = 0;
  const auto B = static_cast<size_t>(block_size_);
  while (found < max_blocks && (static_cast<size_t>(found) + 1) * B <= tokens.size()) {
    const auto block_tokens = tokens.subspan(static_cast<size_t>(found) * B, B);
    const uint64_t h = PrefixCache::chain_hash(parent, block_tokens);
    if (!cache_.find(h, parent, block_tokens)) break;
    parent = h;
    ++found;
  }
  return found;
}

std::vector<int32_t> KvBlockManager::acquire_prefix(std::span<const int32_t> tokens, int max_blocks,
                                                    std::vector<uint64_t>& hashes) {
  std::vector<int32_t> blocks;
  hashes.clear();
  if (!prefix_caching_) return blocks;
  uint64_t parent = PrefixCache::kRootHash;
  const auto B = static_cast<size_t>(block_size_);
  while (static_cast<int>(blocks.size()) < max_blocks && (blocks.size() + 1) * B <= tokens.size()) {
    const auto block_tokens = tokens.subspan(blocks.size() * B, B);
    const uint64_t h = PrefixCache::chain_hash(parent, block_tokens);
    const auto block = cache_.find(h, parent, block_tokens);
    if (!block) break;
    const auto i = static_cast<size_t>(*block);
    if (in_free_[i]) unlink_free(*block);
    ++ref_[i];
    blocks.push_back(*block);
    hashes.push_back(h);
    parent = h;
  }
  return blocks;
}

uint64_t KvBlockManager::publish(int32_t block, uint64_t parent, std::span<const int32_t> block_tokens) {
  const uint64_t h = PrefixCache::chain_hash(parent, block_tokens);
  if (prefix_caching_) cache_.insert(block, h, parent, block_tokens);
  return h;
}

}  // namespace tessera::runtime
