#include "runtime/engine/prefix_cache.h"

#include <algorithm>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser: every input bit reaches every output bit
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t PrefixCache::chain_hash(uint64_t parent, std::span<const int32_t> block_tokens) {
  uint64_t h = mix(parent ^ 0x9E3779B97F4A7C15ull);
  for (const int32_t t : block_tokens) h = mix(h ^ static_cast<uint32_t>(t)) + 0x9E3779B97F4A7C15ull;
  return mix(h ^ block_tokens.size());
}

PrefixCache::PrefixCache(int num_blocks, int block_size)
    : block_size_(static_cast<size_t>(block_size)), by_hash_(static_cast<size_t>(std::max(num_blocks, 1))) {
  TESSERA_CHECK(num_blocks >= 1 && block_size >= 1, "a prefix cache needs blocks (", num_blocks, ") of at least one token (",
                block_size, ")");
  const auto n = static_cast<size_t>(num_blocks);
  held_.assign(n, 0);
  hash_.assign(n, 0);
  parent_.assign(n, 0);
  tokens_.assign(n * block_size_, 0);
}

std::span<const int32_t> PrefixCache::tokens_of(int32_t block) const {
  return std::span<const int32_t>(tokens_).subspan(static_cast<size_t>(block) * block_size_, block_size_);
}

std::optional<int32_t> PrefixCache::find(uint64_t hash, uint64_t parent, std::span<const int32_t> block_tokens) const {
  const std::optional<int32_t> found = by_hash_.find(hash);
  if (!found) return std::nullopt;
  const int32_t block = *found;
  if (parent_[static_cast<size_t>(block)] != parent || block_tokens.size() != block_size_) return std::nullopt;
  const std::span<const int32_t> held = tokens_of(block);
  if (!std::equal(held.begin(), held.end(), block_tokens.begin())) return std::nullopt;
  return block;
}

bool PrefixCache::insert(int32_t block, uint64_t hash, uint64_t parent, std::span<const int32_t> block_tokens) {
  TESSERA_CHECK(in_range(block), "prefix cache: block ", block, " outside the cache's ", held_.size(), " blocks");
  TESSERA_CHECK(block_tokens.size() == block_size_, "prefix cache: a block of ", block_tokens.size(),
                " tokens, but blocks hold ", block_size_);
  const auto b = static_cast<size_t>(block);
  if (held_[b] != 0 || !by_hash_.insert(hash, block)) return false;
  held_[b] = 1;
  hash_[b] = hash;
  parent_[b] = parent;
  std::copy(block_tokens.begin(), block_tokens.end(), tokens_.begin() + static_cast<ptrdiff_t>(b * block_size_));
  return true;
}

void PrefixCache::erase_block(int32_t block) {
  if (!holds(block)) return;
  const auto b = static_cast<size_t>(block);
  by_hash_.erase(hash_[b]);
  held_[b] = 0;
}

}  // namespace tessera::runtime
