// The KV block manager and its prefix cache: reference counts, LRU eviction of unreferenced cached blocks, hash
// chains that find a block only with its whole prefix.
#include <gtest/gtest.h>

#include <numeric>

#include "kernels/base/error.h"
#include "runtime/engine/kv_block_manager.h"

namespace tessera::runtime {
namespace {

std::vector<int32_t> iota(int n, int32_t first) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST(KvBlockManager, AllocatesUntilFullAndReleases) {
  KvBlockManager m(3, 4, true);
  std::vector<int32_t> taken;
  for (int i = 0; i < 3; ++i) taken.push_back(*m.allocate());
  EXPECT_FALSE(m.allocate().has_value());
  EXPECT_EQ(m.used_blocks(), 3);
  m.release(taken);
  EXPECT_EQ(m.free_blocks(), 3);
  EXPECT_THROW(m.release(taken), Error);  // released twice
}

TEST(KvBlockManager, PublishedBlocksAreFoundWithTheirWholePrefix) {
  KvBlockManager m(8, 4, true);
  const auto tokens = iota(12, 10);
  std::vector<int32_t> blocks = {*m.allocate(), *m.allocate(), *m.allocate()};
  uint64_t parent = PrefixCache::kRootHash;
  for (int i = 0; i < 3; ++i) parent = m.publish(blocks[static_cast<size_t>(i)], parent, std::span(tokens).subspan(static_cast<size_t>(i) * 4, 4));
  EXPECT_EQ(m.count_prefix(tokens, 3), 3);
  EXPECT_EQ(m.count_prefix(tokens, 2), 2);
  auto other = tokens;
  other[1] = 999;  // the first block differs: nothing after it matches either
  EXPECT_EQ(m.count_prefix(other, 3), 0);
  auto tail = tokens;
  tail[9] = 999;
  EXPECT_EQ(m.count_prefix(tail, 3), 2);
  std::vector<uint64_t> hashes;
  const auto shared = m.acquire_prefix(tokens, 3, hashes);
  EXPECT_EQ(shared, blocks);
  EXPECT_EQ(hashes.size(), 3u);
  EXPECT_EQ(m.used_blocks(), 3);  // shared, not copied
  m.release(blocks);
  m.release(shared);
  EXPECT_EQ(m.free_blocks(), 8);
  EXPECT_EQ(m.count_prefix(tokens, 3), 3);  // free but still cached
}

TEST(KvBlockManager, EvictsTheLeastRecentlyFreedCachedBlocksFirst) {
  KvBlockManager m(4, 2, true);
  const auto a = iota(2, 1), b = iota(2, 50);
  const int32_t block_a = *m.allocate(), block_b = *m.allocate();
  m.publish(block_a, PrefixCache::kRootHash, a);
  m.publish(block_b, PrefixCache::kRootHash, b);
  m.release(std::vector<int32_t>{block_a});  // freed first: evicted first
  m.release(std::vector<int32_t>{block_b});
  // Two never-used blocks go before any cached one, then a, then b.
  m.allocate();
  m.allocate();
  EXPECT_EQ(m.count_prefix(a, 1), 1);
  EXPECT_EQ(*m.allocate(), block_a);
  EXPECT_EQ(m.count_prefix(a, 1), 0);
  EXPECT_EQ(m.count_prefix(b, 1), 1);
}

TEST(KvBlockManager, DuplicatePublishKeepsTheFirstCopy) {
  KvBlockManager m(4, 2, true);
  const auto t = iota(2, 7);
  const int32_t first = *m.allocate(), second = *m.allocate();
  m.publish(first, PrefixCache::kRootHash, t);
  m.publish(second, PrefixCache::kRootHash, t);
  std::vector<uint64_t> hashes;
  EXPECT_EQ(m.acquire_prefix(t, 1, hashes), std::vector<int32_t>{first});
}

TEST(KvBlockManager, NoCachingWhenDisabled) {
  KvBlockManager m(4, 2, false);
  const auto t = iota(2, 7);
  const int32_t b = *m.allocate();
  m.publish(b, PrefixCache::kRootHash, t);
  EXPECT_EQ(m.count_prefix(t, 1), 0);
}

}  // namespace
}  // namespace tessera::runtime
