#pragma once
// The prefix cache: which KV blocks hold which full blocks of tokens, so that a new sequence whose prompt starts
// like an earlier one (a shared system prompt, the earlier turns of a chat, the n choices of one request) reuses
// those blocks instead of computing them again.
//
// A full block is named by a hash chain over token ids, hash_i = H(hash_{i-1}, tokens of block i), so a block is
// found only together with everything before it (its KV depends on the whole prefix). Lookups compare the block's
// tokens and parent hash as well as the hash: a hash collision can never hand out the wrong KV.
// Leader only, engine thread only: not thread-safe.
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace tessera::runtime {

class PrefixCache {
 public:
  static constexpr uint64_t kRootHash = 0x7e55e7a0c0ffee00ull;  // the parent of a sequence's first block

  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> block_tokens);

  // The block that holds `block_tokens` after the prefix named by `parent`, if one is cached.
  std::optional<int32_t> find(uint64_t hash, uint64_t parent, std::span<const int32_t> block_tokens) const;
  // Records that `block` holds these tokens. Returns false (and records nothing) when another block already
  // holds the same prefix: the first one stays the cached copy.
  bool insert(int32_t block, uint64_t hash, uint64_t parent, std::span<const int32_t> block_tokens);
  // Forgets whatever `block` holds (it is about to be reused for other tokens). No-op for an unknown block.
  void erase_block(int32_t block);
  bool holds(int32_t block) const { return by_block_.count(block) != 0; }
  size_t size() const { return by_hash_.size(); }

 private:
  struct Entry {
    int32_t block;
    uint64_t parent;
    std::vector<int32_t> tokens;
  };
  std::unordered_map<uint64_t, Entry> by_hash_;
  std::unordered_map<int32_t, uint64_t> by_block_;
};

}  // namespace tessera::runtime
