// The message tag ranges (parallel/message_tags.h): the checks that guard them run at compile time, in the header
// itself (a bad list does not build). Here: that those checks really reject overlapping, out-of-range and
// inconsistent lists (static_assert, so this file does not compile if they stop doing so), and the run-time helpers.
#include <gtest/gtest.h>

#include <array>

#include "kernels/base/error.h"
#include "parallel/message_tags.h"

namespace tessera::parallel {
namespace {

// The project's own lists pass (the header asserts this too).
static_assert(tag_ranges_are_portable(kTagRanges));
static_assert(tag_ranges_are_disjoint(kTagRanges));
static_assert(named_tags_are_consistent(kNamedTags));

// Overlaps are caught, however they overlap: sharing the last tag, one inside the other, the same range twice.
static_assert(!tag_ranges_are_disjoint(std::array{TagRange{16, 16}, TagRange{31, 2}}));
static_assert(!tag_ranges_are_disjoint(std::array{TagRange{10, 20}, TagRange{12, 2}}));
static_assert(!tag_ranges_are_disjoint(std::array{TagRange{1, 4}, TagRange{8, 4}, TagRange{1, 4}}));
// Touching is not overlapping: [1, 5) and [5, 9).
static_assert(tag_ranges_are_disjoint(std::array{TagRange{1, 4}, TagRange{5, 4}}));

// Tags beyond MPI's guaranteed upper bound, negative tags and empty ranges are caught.
static_assert(tag_ranges_are_portable(std::array{TagRange{kMaxPortableTag, 1}}));
static_assert(!tag_ranges_are_portable(std::array{TagRange{kMaxPortableTag, 2}}));
static_assert(!tag_ranges_are_portable(std::array{TagRange{32000, 1000}}));
static_assert(!tag_ranges_are_portable(std::array{TagRange{-1, 2}}));
static_assert(!tag_ranges_are_portable(std::array{TagRange{5, 0}}));

// A named tag outside its range, or two named tags with one value, are caught.
static_assert(!named_tags_are_consistent(std::array{NamedTag{MessageTag::kHiddenStates, tag_ranges::kTests}}));
static_assert(!named_tags_are_consistent(
    std::array{NamedTag{MessageTag::kTest, tag_ranges::kTests}, NamedTag{MessageTag::kTest, tag_ranges::kTests}}));

// Every named tag is known; the call sites' tags keep their meaning.
static_assert(is_known_tag(MessageTag::kTest) && is_known_tag(MessageTag::kHiddenStates) &&
              is_known_tag(MessageTag::kSampledTokens) && is_known_tag(MessageTag::kStepOutputSizes) &&
              is_known_tag(MessageTag::kStatus));
static_assert(!is_known_tag(static_cast<MessageTag>(0)));
static_assert(!is_known_tag(static_cast<MessageTag>(kMaxPortableTag)));
static_assert(tag_in(tag_ranges::kTests, 0) == MessageTag::kTest);
static_assert(tag_in(tag_ranges::kTests, 1) == MessageTag::kTestOther);
static_assert(tag_ranges::kHiddenStates.contains(to_int(tag_in(tag_ranges::kHiddenStates, 15))));
// tag_in(tag_ranges::kTests, tag_ranges::kTests.count) in a constant expression does not compile (it throws).

TEST(MessageTags, TagInThrowsOutsideItsRange) {
  volatile int count = tag_ranges::kTests.count;  // not a constant: the check runs at run time
  EXPECT_THROW(tag_in(tag_ranges::kTests, count), Error);
  EXPECT_THROW(tag_in(tag_ranges::kTests, -1), Error);
  EXPECT_EQ(to_int(tag_in(tag_ranges::kTests, count - 1)), tag_ranges::kTests.first + tag_ranges::kTests.count - 1);
}

}  // namespace
}  // namespace tessera::parallel
