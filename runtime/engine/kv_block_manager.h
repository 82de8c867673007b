#pragma once
// The leader's KV block manager: which of the cache's blocks are in use, by how many sequences, and which free
// ones still hold a cached prefix (runtime/engine/prefix_cache.h). Only the leader allocates; the block tables reach
// the other ranks inside the StepPlan, so every rank of the replica writes a sequence's keys into the same blocks.
//
// Blocks are reference-counted: a cached prefix block is shared by every sequence that starts with it. A block whose
// count falls to zero joins the free queue; if it holds a cached prefix it stays findable until it is reused, and
// the queue hands out the least recently freed blocks first (LRU eviction of unreferenced cached blocks).
// Leader only, engine thread only: not thread-safe.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "runtime/engine/prefix_cache.h"

namespace tessera::runtime {

class KvBlockManager {
 public:
  KvBlockManager(int num_blocks, int block_size, bool prefix_caching);

  int total_blocks() const { return static_cast<int>(ref_.size()); }
  int block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  // Blocks that allocate() can hand out now (never used, or free and evictable).
  int free_blocks() const { return free_count_; }
  // Blocks referenced by at least one sequence.
  int used_blocks() const { return total_blocks() - free_count_; }

  // One block with reference count 1, evicting the least recently freed cached block if it must; nullopt when
  // every block is referenced.
  std::optional<int32_t> allocate();
  // Drops one reference of each block (a preempted or finished sequence's table).
  void release(std::span<const int32_t> blocks);

  // Prefix caching. The cached blocks that hold the longest prefix of `tokens` made of whole blocks, at most
  // max_blocks of them, each with one more reference (the caller owns them, as if allocated). `hashes` receives
  // the chain hash of each returned block.
  std::vector<int32_t> acquire_prefix(std::span<const int32_t> tokens, int max_blocks, std::vector<uint64_t>& hashes);
  // How many blocks acquire_prefix would return, without taking them.
  int count_prefix(std::span<const int32_t> tokens, int max_blocks) const;
  // Records that `block` now holds the full block `block_tokens` after the prefix named `parent`; returns its hash.
  uint64_t publish(int32_t block, uint64_t parent, std::span<const int32_t> block_tokens);

 private:
  void push_free(int32_t block);      // at the tail: the most recently freed
  void unlink_free(int32_t block);
  static constexpr int32_t kNone = -1;

  int block_size_;
  bool prefix_caching_;
  std::vector<int32_t> ref_;
  // The free queue, a doubly linked list over block ids so that a cache hit can take a block out of its middle.
  std::vector<int32_t> prev_, next_;
  std::vector<uint8_t> in_free_;
  int32_t head_ = kNone, tail_ = kNone;
  int free_count_ = 0;
  PrefixCache cache_;
};

}  // namespace tessera::runtime
