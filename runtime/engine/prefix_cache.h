#pragma once
// The prefix cache: which KV blocks hold which full blocks of tokens, so that a new sequence whose prompt starts
// like an earlier one (a shared system prompt, the earlier turns of a chat, the n choices of one request) reuses
// those blocks instead of computing them again.
//
// A full block is named by a hash chain over token ids, hash_i = H(hash_{i-1}, tokens of block i), so a block is
// found only together with everything before it (its KV depends on the whole prefix). Lookups compare the block's
// tokens and parent hash as well as the hash: a hash collision can never hand out the wrong KV.
// What a block holds is stored by block id (the cache has a fixed number of blocks, each of block_size tokens).
// The hash index is a flat table (kernels/base/flat_hash_index.h) sized for all of them up front: publishing a
// block (every block_size decode steps of every sequence) allocates nothing, never rehashes and touches one or
// two cache lines of the index.
// Leader only, engine thread only: not thread-safe.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kernels/base/flat_hash_index.h"

namespace tessera::runtime {

class PrefixCache {
 public:
  static constexpr uint64_t kRootHash = 0x7e55e7a0c0ffee00ull;  // the parent of a sequence's first block

  PrefixCache(int num_blocks, int block_size);

  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> block_tokens);

  // The block that holds `block_tokens` after the prefix named by `parent`, if one is cached.
  std::optional<int32_t> find(uint64_t hash, uint64_t parent, std::span<const int32_t> block_tokens) const;
  // Records that `block` holds these tokens (exactly block_size of them). Returns false (and records nothing)
  // when another block already holds the same prefix, or this block holds something: the first one stays.
  bool insert(int32_t block, uint64_t hash, uint64_t parent, std::span<const int32_t> block_tokens);
  // Forgets whatever `block` holds (it is about to be reused for other tokens). No-op for an unknown block.
  void erase_block(int32_t block);
  bool holds(int32_t block) const { return in_range(block) && held_[static_cast<size_t>(block)] != 0; }
  size_t size() const { return by_hash_.size(); }

 private:
  bool in_range(int32_t block) const { return block >= 0 && static_cast<size_t>(block) < held_.size(); }
  std::span<const int32_t> tokens_of(int32_t block) const;

  size_t block_size_;
  FlatHashIndex by_hash_;  // chain hash -> the block that holds it
  // Per block id: whether it holds a cached block, and if so its hash, its parent's hash and its tokens.
  std::vector<uint8_t> held_;
  std::vector<uint64_t> hash_, parent_;
  std::vector<int32_t> tokens_;  // [num_blocks * block_size]
};

}  // namespace tessera::runtime
