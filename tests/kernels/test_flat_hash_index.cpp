// FlatHashIndex: open addressing with linear probing and backward-shift deletion. Keys are chosen so that they
// collide in the table's low bits and wrap around its end, which is where linear probing and its deletions go
// wrong if they do; a std::unordered_map is the reference.
#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

#include "kernels/base/error.h"
#include "kernels/base/flat_hash_index.h"

namespace tessera {
namespace {

TEST(FlatHashIndex, InsertFindAssignErase) {
  FlatHashIndex index;
  EXPECT_TRUE(index.insert(42, 7));
  EXPECT_FALSE(index.insert(42, 8));  // present: unchanged
  EXPECT_EQ(index.find(42), 7);
  EXPECT_FALSE(index.find(43).has_value());
  EXPECT_TRUE(index.assign(42, 9));
  EXPECT_FALSE(index.assign(43, 9));
  EXPECT_EQ(index.find(42), 9);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_TRUE(index.erase(42));
  EXPECT_FALSE(index.erase(42));
  EXPECT_FALSE(index.find(42).has_value());
  EXPECT_EQ(index.size(), 0u);
  EXPECT_THROW(index.insert(1, -1), Error);  // -1 marks an empty slot
  EXPECT_THROW(index.assign(1, -2), Error);
}

// Random inserts and erasures of keys that share four home slots of a 16-slot table (two of them its last, so
// probes wrap), checked against a reference after every operation; and of mixed keys that make it grow.
TEST(FlatHashIndex, CollidingKeysSurviveInsertsAndErasuresInAnyOrder) {
  std::mt19937_64 rng(1234);
  for (const bool colliding : {true, false}) {
    for (int round = 0; round < 40; ++round) {
      FlatHashIndex index;  // 16 slots; the mixed keys grow it to hundreds
      std::unordered_map<uint64_t, int32_t> reference;
      const size_t most = colliding ? 8 : 300;  // at most half of 16 while colliding keys must keep their homes
      uint64_t next_unique = 1;
      for (int op = 0; op < 600; ++op) {
        const bool insert = reference.empty() || (reference.size() < most && rng() % 3 != 0);
        if (insert) {
          constexpr uint64_t kHomes[] = {0, 1, 14, 15};
          const uint64_t key = colliding ? (next_unique++ << 20) | kHomes[rng() % 4]
                                         : FlatHashIndex::mix_key(next_unique++);
          const auto value = static_cast<int32_t>(rng() % 1000);
          ASSERT_TRUE(index.insert(key, value));
          reference[key] = value;
        } else {
          auto it = reference.begin();
          std::advance(it, static_cast<ptrdiff_t>(rng() % reference.size()));
          ASSERT_TRUE(index.erase(it->first));
          EXPECT_FALSE(index.find(it->first).has_value());
          reference.erase(it);
        }
        ASSERT_EQ(index.size(), reference.size());
        for (const auto& [key, value] : reference) {
          ASSERT_EQ(index.find(key), value) << (colliding ? "colliding" : "mixed") << " round " << round
                                            << ", operation " << op << ": key " << key << " lost";
        }
      }
    }
  }
}

}  // namespace
}  // namespace tessera
