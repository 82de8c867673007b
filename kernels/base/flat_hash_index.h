#pragma once
// A map from well-mixed 64-bit keys (chain hashes, sequence ids after mixing) to non-negative int32 values (block
// ids, positions in a dense array), in one flat array: open addressing with linear probing, at most half full,
// backward-shift deletion (no tombstones). The engine's control plane looks such keys up for every sequence of
// every step; a node-based std::unordered_map chases a bucket and a node through memory that grows with what it
// holds, where this touches one or two cache lines and allocates only when it grows.
// The caller chooses the home slot's bits: keys must be well mixed in their low bits (use mix_key otherwise).
// Not thread-safe.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "kernels/base/error.h"

namespace tessera {

class FlatHashIndex {
 public:
  explicit FlatHashIndex(size_t expected = 8) { rebuild(slots_for(expected)); }

  // splitmix64's finaliser, for keys that are not hashes already (e.g. consecutive ids).
  static uint64_t mix_key(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }

  size_t size() const { return size_; }

  std::optional<int32_t> find(uint64_t key) const {
    const size_t i = find_slot(key);
    if (i == kNone) return std::nullopt;
    return slots_[i].value;
  }

  // Adds key -> value (value >= 0) unless the key is present; returns false, changing nothing, when it is.
  bool insert(uint64_t key, int32_t value) {
    TESSERA_CHECK(value >= 0, "FlatHashIndex: value ", value, " is negative (-1 marks an empty slot)");
    if (2 * (size_ + 1) > slots_.size()) rebuild(2 * slots_.size());
    size_t i = home(key);
    for (; slots_[i].value >= 0; i = next(i)) {
      if (slots_[i].key == key) return false;
    }
    slots_[i] = Slot{key, value};
    ++size_;
    return true;
  }

  // Changes the value of a present key; returns false when the key is absent.
  bool assign(uint64_t key, int32_t value) {
    TESSERA_CHECK(value >= 0, "FlatHashIndex: value ", value, " is negative (-1 marks an empty slot)");
    const size_t i = find_slot(key);
    if (i == kNone) return false;
    slots_[i].value = value;
    return true;
  }

  // Removes the key; returns false when it is absent.
  bool erase(uint64_t key) {
    size_t hole = find_slot(key);
    if (hole == kNone) return false;
    // The slots after the hole that could live in it move up, so that no probe for a key still present stops
    // early at the hole. An entry at i stays when its home lies cyclically in (hole, i]: its probe never passes
    // the hole.
    for (size_t i = next(hole); slots_[i].value >= 0; i = next(i)) {
      const size_t h = home(slots_[i].key);
      const bool stays = hole <= i ? (hole < h && h <= i) : (hole < h || h <= i);
      if (stays) continue;
      slots_[hole] = slots_[i];
      hole = i;
    }
    slots_[hole] = Slot{};
    --size_;
    return true;
  }

 private:
  struct Slot {
    uint64_t key = 0;
    int32_t value = -1;  // -1: empty
  };
  static constexpr size_t kNone = ~size_t{0};

  static size_t slots_for(size_t expected) { return std::bit_ceil(std::max<size_t>(16, 2 * expected)); }
  size_t home(uint64_t key) const { return static_cast<size_t>(key) & (slots_.size() - 1); }
  size_t next(size_t i) const { return (i + 1) & (slots_.size() - 1); }

  size_t find_slot(uint64_t key) const {
    for (size_t i = home(key);; i = next(i)) {
      if (slots_[i].value < 0) return kNone;  // never full: every probe ends at an empty slot
      if (slots_[i].key == key) return i;
    }
  }

  void rebuild(size_t slots) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(slots, Slot{});
    size_ = 0;
    for (const Slot& s : old) {
      if (s.value >= 0) insert(s.key, s.value);
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace tessera
