// TokenList: a step's new tokens, inline up to kInline and on the heap beyond, as a vector would hold them whatever
// the sizes it passes through (recycled steps go from a prompt chunk to one token and back).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "parallel/token_list.h"

namespace tessera::parallel {
namespace {

std::vector<int32_t> iota(size_t n, int32_t first) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST(TokenList, HoldsWhatAVectorHoldsAcrossInlineAndHeapSizes) {
  TokenList list;
  EXPECT_TRUE(list.empty());
  // Sizes that cross kInline in both directions, as a recycled step's do.
  for (const size_t n : {size_t{1}, TokenList::kInline, TokenList::kInline + 1, size_t{300}, size_t{1}, size_t{0},
                         size_t{7}, TokenList::kInline, size_t{2}}) {
    const std::vector<int32_t> want = iota(n, static_cast<int32_t>(10 * n));
    list.assign(want.begin(), want.end());
    ASSERT_EQ(list.size(), n);
    EXPECT_TRUE(list == want) << n << " tokens";
    EXPECT_EQ(std::vector<int32_t>(list.begin(), list.end()), want);
    if (n > 0) {
      EXPECT_EQ(list.back(), want.back());
    }
  }
}

TEST(TokenList, ResizeAndAssignKeepThePrefix) {
  TokenList list{1, 2, 3};
  list.resize(6, 4);  // now on the heap
  EXPECT_TRUE(list == (std::vector<int32_t>{1, 2, 3, 4, 4, 4}));
  list.resize(2);  // back inline
  EXPECT_TRUE(list == (std::vector<int32_t>{1, 2}));
  list.resize(8, 9);
  EXPECT_TRUE(list == (std::vector<int32_t>{1, 2, 9, 9, 9, 9, 9, 9}));
  list.assign(3, 7);
  EXPECT_TRUE(list == (std::vector<int32_t>{7, 7, 7}));
  list.assign(size_t{6}, -1);
  EXPECT_TRUE(list == (std::vector<int32_t>{-1, -1, -1, -1, -1, -1}));
  list[5] = 4;
  EXPECT_EQ(list[5], 4);
  TokenList from_heap(iota(8, 100));  // never inline before: shrinking must bring its tokens in
  from_heap.resize(3);
  EXPECT_TRUE(from_heap == (std::vector<int32_t>{100, 101, 102}));
  list.clear();
  EXPECT_TRUE(list.empty());
  EXPECT_TRUE(list == TokenList{});
}

TEST(TokenList, EqualityComparesTokensNotStorage) {
  const std::vector<int32_t> long_list = iota(40, 0);
  TokenList a(long_list);
  TokenList b;
  b.assign(long_list.begin(), long_list.end());
  EXPECT_TRUE(a == b);
  b[39] = -1;
  EXPECT_FALSE(a == b);
  TokenList c{5};
  TokenList d(long_list);
  d.assign(c.begin(), c.end());  // a heap list cut to one inline token equals an inline one
  EXPECT_TRUE(c == d);
  EXPECT_FALSE(TokenList{5} == TokenList({5, 6}));
}

}  // namespace
}  // namespace tessera::parallel
