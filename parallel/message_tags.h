#pragma once
// Every point-to-point message tag, in one place, so that two subsystems never pick the same MPI tag.
//
// Each kind of message owns a range of consecutive tags (TagRange); the ranges are listed in kTagRanges, and the
// static_asserts below refuse to compile when two of them overlap or one leaves the tags every MPI implementation
// accepts (0 .. 32767: MPI_TAG_UB is at least that). A kind that needs several tags (one per micro-batch, say)
// takes them from its own range with tag_in(); the named tags (MessageTag) are checked to lie in their ranges and
// to be distinct. NCCL has no tags (parallel/nccl/nccl_communicator.h): there a tag only names a message.
//
// What the check catches, as a compile-fail example (do not add it to the build):
//   static_assert(tag_ranges_are_disjoint(std::array{TagRange{16, 16}, TagRange{31, 2}}));  // tag 31 is in both
// fails with "static assertion failed"; tests/parallel/test_message_tags.cpp asserts that the checks report such
// lists as bad.
#include <array>
#include <cstddef>

#include "kernels/base/error.h"

namespace tessera::parallel {

// The largest tag that every MPI implementation accepts (the standard's lower bound for MPI_TAG_UB).
inline constexpr int kMaxPortableTag = 32767;

// Tags [first, first + count).
struct TagRange {
  int first = 0;
  int count = 0;
  constexpr int end() const { return first + count; }
  constexpr bool contains(int tag) const { return tag >= first && tag < end(); }
};

// The ranges, each with room to grow without renumbering the others. A new kind of message gets a range here and
// an entry in kTagRanges.
namespace tag_ranges {
inline constexpr TagRange kTests{1, 15};          // tests of the communicators themselves
inline constexpr TagRange kHiddenStates{16, 16};  // activations from one pipeline stage to the next
inline constexpr TagRange kStepOutputs{32, 16};   // the sampling rank's results for the leader, and their sizes
inline constexpr TagRange kStatus{48, 16};        // errors and readiness reports towards the leader
}  // namespace tag_ranges

inline constexpr std::array kTagRanges = {tag_ranges::kTests, tag_ranges::kHiddenStates, tag_ranges::kStepOutputs,
                                          tag_ranges::kStatus};

// Every range non-empty and inside 0 .. kMaxPortableTag.
template <size_t N>
constexpr bool tag_ranges_are_portable(const std::array<TagRange, N>& ranges) {
  for (const TagRange& r : ranges) {
    if (r.first < 0 || r.count < 1 || r.count > kMaxPortableTag + 1 - r.first) return false;
  }
  return true;
}

// No tag in two ranges.
template <size_t N>
constexpr bool tag_ranges_are_disjoint(const std::array<TagRange, N>& ranges) {
  for (size_t i = 0; i < N; ++i) {
    for (size_t j = i + 1; j < N; ++j) {
      if (ranges[i].first < ranges[j].end() && ranges[j].first < ranges[i].end()) return false;
    }
  }
  return true;
}

static_assert(tag_ranges_are_portable(kTagRanges), "a message tag range is empty or outside MPI's tags 0..32767");
static_assert(tag_ranges_are_disjoint(kTagRanges), "two message tag ranges overlap");

// The named tags, as the call sites use them.
enum class MessageTag : int {
  kTest = tag_ranges::kTests.first,
  kTestOther = tag_ranges::kTests.first + 1,  // a second tag for tests of tag matching
  kHiddenStates = tag_ranges::kHiddenStates.first,
  kSampledTokens = tag_ranges::kStepOutputs.first,        // the encoded StepOutputs
  kStepOutputSizes = tag_ranges::kStepOutputs.first + 1,  // the byte size of each kSampledTokens message, sent first
  kStatus = tag_ranges::kStatus.first,
};

constexpr int to_int(MessageTag tag) { return static_cast<int>(tag); }

// Each named tag with the range it belongs to. A new MessageTag goes here too.
struct NamedTag {
  MessageTag tag;
  TagRange range;
};
inline constexpr std::array kNamedTags = {
    NamedTag{MessageTag::kTest, tag_ranges::kTests},
    NamedTag{MessageTag::kTestOther, tag_ranges::kTests},
    NamedTag{MessageTag::kHiddenStates, tag_ranges::kHiddenStates},
    NamedTag{MessageTag::kSampledTokens, tag_ranges::kStepOutputs},
    NamedTag{MessageTag::kStepOutputSizes, tag_ranges::kStepOutputs},
    NamedTag{MessageTag::kStatus, tag_ranges::kStatus},
};

// Each named tag inside its range, the range one of kTagRanges, no two named tags equal.
template <size_t N>
constexpr bool named_tags_are_consistent(const std::array<NamedTag, N>& tags) {
  for (size_t i = 0; i < N; ++i) {
    if (!tags[i].range.contains(to_int(tags[i].tag))) return false;
    bool listed = false;
    for (const TagRange& r : kTagRanges) {
      if (r.first == tags[i].range.first && r.count == tags[i].range.count) listed = true;
    }
    if (!listed) return false;
    for (size_t j = i + 1; j < N; ++j) {
      if (tags[i].tag == tags[j].tag) return false;
    }
  }
  return true;
}

static_assert(named_tags_are_consistent(kNamedTags), "a named message tag is outside its range or used twice");

// Whether `tag` lies in one of the ranges (the MPI backend refuses any other).
constexpr bool is_known_tag(MessageTag tag) {
  for (const TagRange& r : kTagRanges) {
    if (r.contains(to_int(tag))) return true;
  }
  return false;
}

// The index-th tag of `range`, for a kind of message that needs several tags. Outside the range it throws
// tessera::Error (in a constant expression: does not compile).
constexpr MessageTag tag_in(TagRange range, int index) {
  TESSERA_CHECK(index >= 0 && index < range.count, "message tag index ", index, " is outside its range of ",
                range.count, " tags from ", range.first);
  return static_cast<MessageTag>(range.first + index);
}

}  // namespace tessera::parallel
