#pragma once
// The delta control plane: step plans on the wire carry only what changed since the plans before them, so that a
// step's message grows with what the step changes (new tokens, a block now and then), not with the batch.
//
// The leader's StepPlanEncoder and every other rank's StepPlanDecoder keep the same mirror: for each live sequence
// id, the block table and the SamplingSettings that the ranks were last told. For a sequence the mirror knows, a
// message carries its id, start position, new tokens and flags; of its block table only the blocks appended since
// (or, when the known table is not a prefix of the new one, e.g. a preempted sequence that came back, the whole
// table); its sampling settings only when their bits changed; history_prefix and prompt_logprob_targets only when
// non-empty. A sequence the mirror does not know carries everything. The decoder rebuilds the full StepPlan, equal
// (operator==, and bit for bit) to what the leader encoded, so StageExecutor and everything after it stay unchanged.
//
// Both sides apply a plan to the mirror in the same way (StepPlanMirror::apply): its sequences in plan order, then
// plan.finished drops its ids. The scheduler never runs a finished id in the plan that announces it (it announces
// ids in the plan after the one whose results ended them, or ends cancelled ones before planning), but if a plan
// did, the id would be applied and then dropped, on both sides alike. A preempted sequence is not announced in
// `finished`: its entry stays until it comes back (its new, shorter table replaces the known one) or finishes.
// A plan that names one sequence twice is refused on both sides (tessera::Error): it would be a scheduler bug, and
// refusing it bounds a decoded plan by the mirror plus the message.
//
// Every rank must decode every plan, in the leader's order: the mirrors stay identical only then. Each message
// names the mirror it was encoded against (how many plans the leader had encoded, how many sequences the mirror
// holds and a 32-bit hash of its contents); a decoder whose mirror differs throws tessera::Error naming the step
// instead of rebuilding a wrong plan. A malformed or truncated message throws tessera::Error too, and a decode that
// throws leaves the decoder as it was.
//
// Use: leader `auto bytes = encoder.encode(plan);`, a byte broadcast, follower `plan = decoder.decode(bytes);`.
// Heartbeat and shutdown plans travel the same way (they must: each message advances the mirror's count).
// Wire format (parallel/step_plan_delta.cpp has the layout): magic "PSPD", a version, then LEB128 varints for
// ids, positions, counts and tokens, block ids as zigzag varints of the difference to the previous block.
// Engine thread only: not thread-safe.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/base/flat_hash_index.h"
#include "parallel/step_plan.h"

namespace tessera::parallel {

// What the ranks know of the live sequences. Encoder and decoder each hold one; they must stay identical.
// The entries live in one dense array, found through a flat index by id (kernels/base/flat_hash_index.h): every
// step looks up every sequence of the plan, and a node per entry scattered over the heap made those lookups the
// encoder's largest cost at a few hundred sequences.
class StepPlanMirror {
 public:
  struct Known {
    uint64_t id = 0;
    BlockTable block_table;      // shared with the plan that last carried it
    SamplingSettings sampling;
    uint64_t table_hash = 0;     // of block_table (extended as blocks are appended)
    uint64_t sampling_hash = 0;  // of sampling's bits
    // Scratch, no part of the state: the encode or decode attempt (next_epoch()) that last met this id, to refuse
    // a plan that names one sequence twice.
    uint64_t seen_in = 0;
  };
  // How one sequence of a plan relates to what the mirror knew, as the encoder found it or the message said, so
  // that applying the plan need not compare tables and settings again. The mirror that results is the same as
  // without (its hashes depend only on the contents).
  struct Coded {
    int32_t known = -1;          // the entry's position (position_of), -1 for a sequence the mirror did not know
    uint8_t table = 3;           // 0: the known table, 1: blocks appended to it, 2: replaced, 3: unknown
    bool same_sampling = false;  // true: the known settings
  };

  // Pointers stay valid until the next apply().
  const Known* find(uint64_t id) const;
  Known* find(uint64_t id);
  int32_t position_of(const Known* k) const { return k == nullptr ? -1 : static_cast<int32_t>(k - known_.data()); }
  // The plan's sequences in order (each one's block table and sampling become the known ones), then its finished
  // ids are dropped; counts one more plan. `coded`, if not empty, has one entry per plan sequence.
  void apply(const StepPlan& plan, std::span<const Coded> coded = {});

  size_t size() const { return known_.size(); }
  uint64_t plans() const { return plans_; }  // plans applied
  // A hash of every (id, block table, sampling) entry, independent of their order.
  uint64_t digest() const { return digest_; }
  uint32_t digest32() const { return static_cast<uint32_t>(digest_ ^ (digest_ >> 32)); }
  // A fresh token for Known::seen_in: one per encode or decode attempt.
  uint64_t next_epoch() { return ++epoch_; }

 private:
  void erase(uint64_t id);

  std::vector<Known> known_;    // dense, any order (an erased entry's place takes the last one)
  FlatHashIndex positions_;     // FlatHashIndex::mix_key(id) -> its position in known_
  uint64_t digest_ = 0;
  uint64_t plans_ = 0;
  uint64_t epoch_ = 0;
};

class StepPlanEncoder {
 public:
  // The wire's magic ("PSPD") and version, checked by the decoder.
  static constexpr uint32_t kMagic = 0x44505350;
  static constexpr uint32_t kVersion = 1;

  // The message for `plan`, relative to every plan encoded before it; then remembers `plan`.
  std::vector<std::byte> encode(const StepPlan& plan);

  const StepPlanMirror& mirror() const { return mirror_; }

 private:
  StepPlanMirror mirror_;
  std::vector<StepPlanMirror::Coded> coded_;  // scratch, kept for its capacity
};

class StepPlanDecoder {
 public:
  // The full plan the leader encoded. Throws tessera::Error, leaving the decoder unchanged, on a wrong magic or
  // version, a truncated or malformed message, counts the message cannot hold, or a message encoded against a
  // different mirror than this rank's (a plan lost, repeated or decoded out of order): the message names the step.
  StepPlan decode(std::span<const std::byte> bytes);

  const StepPlanMirror& mirror() const { return mirror_; }

 private:
  StepPlanMirror mirror_;
  std::vector<StepPlanMirror::Coded> coded_;  // scratch, kept for its capacity
};

}  // namespace tessera::parallel
