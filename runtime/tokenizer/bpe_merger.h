#pragma once
// The BPE merge loop shared by both tokenizer models. A word starts as a sequence of symbol ids; the adjacent
// pair with the lowest rank is merged into its result token, the leftmost one when ranks tie, until no pair
// has a rank. That is Hugging Face's order (BPE::merge_word) and sentencepiece's (highest score, leftmost).
// Pairs live in an open-addressing hash table keyed by the two ids, and the loop uses a binary heap over a
// linked list of symbols, so a long word (a run of 10k spaces) costs O(n log n), not O(n^2).
#include <cstdint>
#include <span>
#include <vector>

namespace tessera::runtime {

class BpeMerger {
 public:
  struct Merge {
    int32_t rank = 0;    // lower merges first
    int32_t result = 0;  // token id of the merged pair
  };

  // Adds a merge; a pair added twice keeps its first (lower-ranked) entry.
  void add(int32_t left, int32_t right, int32_t rank, int32_t result);
  const Merge* find(int32_t left, int32_t right) const;
  size_t size() const { return count_; }

  // Merges `symbols` in place (ids < 0 are symbols that never merge, e.g. unknown characters).
  void merge(std::vector<int32_t>& symbols) const;

 private:
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  void grow();

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

}  // namespace tessera::runtime
