#include "runtime/tokenizer/bpe_merger.h"

#include <algorithm>
#include <functional>

namespace tessera::runtime {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finaliser: spreads the two ids over the table
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

void BpeMerger::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
  count_ = 0;
  for (const Slot& slot : old) {
    if (slot.key != kEmpty) {
      add(static_cast<int32_t>(slot.key >> 32), static_cast<int32_t>(slot.key & 0xFFFFFFFFu), slot.merge.rank,
          slot.merge.result);
    }
  }
}

void BpeMerger::add(int32_t left, int32_t right, int32_t rank, int32_t result) {
  if ((count_ + 1) * 2 > slots_.size()) grow();
  const uint64_t k = key(left, right);
  const size_t mask = slots_.size() - 1;
  for (size_t i = mix(k) & mask;; i = (i + 1) & mask) {
    if (slots_[i].key == k) return;  // first (best) entry wins
    if (slots_[i].key == kEmpty) {
      slots_[i].key = k;
      slots_[i].merge = Merge{rank, result};
      ++count_;
      return;
    }
  }
}

const BpeMerger::Merge* BpeMerger::find(int32_t left, int32_t right) const {
  if (slots_.empty() || left < 0 || right < 0) return nullptr;
  const uint64_t k = key(left, right);
  const size_t mask = slots_.size() - 1;
  for (size_t i = mix(k) & mask;; i = (i + 1) & mask) {
    if (slots_[i].key == k) return &slots_[i].merge;
    if (slots_[i].key == kEmpty) return nullptr;
  }
}

void BpeMerger::merge(std::vector<int32_t>& symbols) const {
  const size_t n = symbols.size();
  if (n < 2) return;
  // Candidate merges: (rank, position of the left symbol). Entries go stale when a neighbour merges first;
  // they are checked against the current ids when popped.
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t left_id;
    int32_t right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<int32_t> next;
  thread_local std::vector<int32_t> prev;
  thread_local std::vector<Candidate> heap;
  next.resize(n);
  prev.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
    prev[i] = static_cast<int32_t>(i) - 1;
  }
  const auto push = [&](int32_t pos) {
    const int32_t right = next[static_cast<size_t>(pos)];
    if (right < 0) return;
    const int32_t a = symbols[static_cast<size_t>(pos)];
    const int32_t b = symbols[static_cast<size_t>(right)];
    if (const Merge* m = find(a, b)) {
      heap.push_back(Candidate{m->rank, pos, a, b});
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const Candidate c = heap.back();
    heap.pop_back();
    const auto pos = static_cast<size_t>(c.pos);
    const int32_t right = next[pos];
    // Stale: the left symbol was merged away (id changed) or its right neighbour changed.
    if (symbols[pos] != c.left_id || right < 0 || symbols[static_cast<size_t>(right)] != c.right_id) continue;
    const Merge* m = find(c.left_id, c.right_id);
    symbols[pos] = m->result;
    symbols[static_cast<size_t>(right)] = -2;  // removed
    next[pos] = next[static_cast<size_t>(right)];
    if (next[pos] >= 0) prev[static_cast<size_t>(next[pos])] = c.pos;
    if (prev[pos] >= 0) push(prev[pos]);
    push(c.pos);
  }
  size_t out = 0;
  for (size_t i = 0; i < n; i = next[i] < 0 ? n : static_cast<size_t>(next[i])) symbols[out++] = symbols[i];
  symbols.resize(out);
}

}  // namespace tessera::runtime
