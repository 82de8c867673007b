#include "runtime/engine/prefix_cache.h"

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

std::optional<int32_t> PrefixCache::find(uint64_t hash, uint64_t parent, std::span<const int32_t> block_tokens) const {
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  const Entry& e = it->second;
  if (e.parent != parent || e.tokens.size() != block_tokens.size()) return std::nullopt;
  for (size_t i = 0; i < block_tokens.size(); ++i) {
    if (e.tokens[i] != block_tokens[i]) return std::nullopt;
  }
  return e.block;
}

bool PrefixCache::insert(int32_t block, uint64_t hash, uint64_t parent, std::span<const int32_t> block_tokens) {
  if (by_hash_.count(hash) != 0 || by_block_.count(block) != 0) return false;
  by_hash_.emplace(hash, Entry{block, parent, std::vector<int32_t>(block_tokens.begin(), block_tokens.end())});
  by_block_.emplace(block, hash);
  return true;
}

void PrefixCache::erase_block(int32_t block) {
  const auto it = by_block_.find(block);
  if (it == by_block_.end()) return;
  by_hash_.erase(it->second);
  by_block_.erase(it);
}

}  // namespace tessera::runtime
