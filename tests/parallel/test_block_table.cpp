// BlockTable: copies share one storage, a change to a shared table copies it first (what a plan in flight holds
// never changes), equality compares contents unless the storage is shared.
#include <gtest/gtest.h>

#include "parallel/block_table.h"

namespace tessera::parallel {
namespace {

TEST(BlockTable, CopiesShareUntilOneChanges) {
  BlockTable a{3, 5, 8};
  BlockTable b = a;
  EXPECT_TRUE(a.shares_storage_with(b));
  EXPECT_EQ(a.data(), b.data());
  b.push_back(13);  // shared: b gets a copy of its own first
  EXPECT_FALSE(a.shares_storage_with(b));
  EXPECT_EQ(a, (BlockTable{3, 5, 8}));
  EXPECT_EQ(b, (BlockTable{3, 5, 8, 13}));
  EXPECT_EQ(b.back(), 13);
  EXPECT_EQ(b[1], 5);
}

TEST(BlockTable, AnUnsharedTableGrowsInPlace) {
  BlockTable a;
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.begin(), a.end());
  a.push_back(1);
  a.push_back(2);
  a.push_back(3);  // libstdc++ has grown the vector to 4 slots
  const int32_t* storage = a.data();
  {
    const BlockTable reader = a;  // a plan in flight...
    EXPECT_EQ(reader.size(), 3u);
  }  // ...completed: `a` is the only holder again, so no copy
  a.push_back(4);
  EXPECT_EQ(a.data(), storage);
  EXPECT_EQ(a, (BlockTable{1, 2, 3, 4}));
}

TEST(BlockTable, EqualityIsByContents) {
  const BlockTable a{1, 2, 3};
  const BlockTable b(std::vector<int32_t>{1, 2, 3});
  EXPECT_FALSE(a.shares_storage_with(b));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, (BlockTable{1, 2}));
  EXPECT_EQ(BlockTable{}, BlockTable(std::vector<int32_t>{}));
  BlockTable c = a;
  c.clear();
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(a.size(), 3u);  // clearing a copy leaves the others
}

}  // namespace
}  // namespace tessera::parallel
