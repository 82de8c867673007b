// The prefix cache: a block is found by its hash only with its parent and its tokens; the first holder of a hash
// stays; erased blocks are gone. (Its hash index: tests/kernels/test_flat_hash_index.cpp.)
#include <gtest/gtest.h>

#include <vector>

#include "kernels/base/error.h"
#include "runtime/engine/prefix_cache.h"

namespace tessera::runtime {
namespace {

constexpr int kBlocks = 64;
constexpr int kBlockSize = 2;

std::vector<int32_t> tokens_for(uint64_t hash) {
  return {static_cast<int32_t>(hash & 0x7fffffff), static_cast<int32_t>(hash >> 33)};
}

TEST(PrefixCache, FindsWhatWasInsertedAndNothingElse) {
  PrefixCache cache(kBlocks, kBlockSize);
  const auto t = tokens_for(7);
  EXPECT_TRUE(cache.insert(3, 7, PrefixCache::kRootHash, t));
  EXPECT_EQ(cache.find(7, PrefixCache::kRootHash, t), 3);
  EXPECT_FALSE(cache.find(7, 12345, t).has_value());                 // another parent
  EXPECT_FALSE(cache.find(7, PrefixCache::kRootHash, tokens_for(8)).has_value());  // other tokens, same hash
  EXPECT_FALSE(cache.find(8, PrefixCache::kRootHash, t).has_value());
  EXPECT_FALSE(cache.insert(4, 7, PrefixCache::kRootHash, t));       // the first holder of a hash stays
  EXPECT_FALSE(cache.insert(3, 9, PrefixCache::kRootHash, tokens_for(9)));  // block 3 holds something
  EXPECT_EQ(cache.size(), 1u);
  cache.erase_block(3);
  EXPECT_FALSE(cache.find(7, PrefixCache::kRootHash, t).has_value());
  EXPECT_EQ(cache.size(), 0u);
  cache.erase_block(3);  // unknown now: a no-op
  EXPECT_THROW(cache.insert(kBlocks, 1, PrefixCache::kRootHash, tokens_for(1)), Error);
  EXPECT_THROW(cache.insert(0, 1, PrefixCache::kRootHash, std::vector<int32_t>{1}), Error);
}

// Every block held at once, all under one home slot of the index: every probe still ends.
TEST(PrefixCache, HoldsEveryBlockAtOnce) {
  PrefixCache cache(kBlocks, kBlockSize);
  for (int32_t b = 0; b < kBlocks; ++b) {
    const uint64_t hash = static_cast<uint64_t>(b) << 7;  // all 64 in home slot 0
    ASSERT_TRUE(cache.insert(b, hash, PrefixCache::kRootHash, tokens_for(hash)));
  }
  EXPECT_EQ(cache.size(), static_cast<size_t>(kBlocks));
  EXPECT_FALSE(cache.find(uint64_t{999} << 7, PrefixCache::kRootHash, tokens_for(uint64_t{999} << 7)).has_value());
  for (int32_t b = 0; b < kBlocks; b += 2) cache.erase_block(b);
  for (int32_t b = 1; b < kBlocks; b += 2) {
    const uint64_t hash = static_cast<uint64_t>(b) << 7;
    EXPECT_EQ(cache.find(hash, PrefixCache::kRootHash, tokens_for(hash)), b);
  }
}

}  // namespace
}  // namespace tessera::runtime
