#include "parallel/step_plan_delta.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <ios>
#include <limits>
#include <unordered_set>
#include <utility>

#include "parallel/wire_format.h"

// Wire format of a message (version 1). varint: LEB128; zigzag: a signed value as a varint, (v << 1) ^ (v >> 63).
//   u32 magic "PSPD", u32 version
//   varint step_index
//   varint plans     plans the leader had encoded before this one   } the mirror the message is encoded against:
//   varint live      sequences its mirror held                     } the decoder checks them against its own
//   u32 digest       StepPlanMirror::digest32() of that mirror     } before it reads anything else
//   u8 flags         1: shutdown, 2: heartbeat
//   u8 micro_batch
//   varint count, then `count` sequences:
//     varint sequence_id
//     u8 flags       1: sample, 2: history_reset, 4: history_prefix follows, 8: prompt_logprob_targets follow,
//                    16: sampling settings follow, 32 * table mode (0: the known table, 1: blocks appended to it,
//                    2: the whole table), 128: a sequence the mirror does not know (mode 2 and settings follow)
//     varint start_position (< 2^31)
//     varint n, n varint new_tokens (each as its u32 bits)
//     mode 1: varint n >= 1, n zigzag block ids, each the difference to the block before it (the known table's
//             last, or 0 when the known table is empty)
//     mode 2: varint n, n zigzag block ids, each the difference to the block before it (0 for the first)
//     settings (flag 16): 42 bytes, the fields of SamplingSettings in declaration order, little-endian
//     history_prefix (flag 4), then prompt_logprob_targets (flag 8): varint n >= 1, n varint tokens
//   varint count, then `count` varint finished ids
namespace tessera::parallel {
namespace {

constexpr uint8_t kSample = 1, kHistoryReset = 2, kHistoryPrefix = 4, kPromptTargets = 8, kSampling = 16,
                  kNew = 128;
constexpr int kModeShift = 5;
enum TableMode : uint8_t { kSameTable = 0, kAppendTable = 1, kReplaceTable = 2 };
constexpr uint8_t kPlanShutdown = 1, kPlanHeartbeat = 2;
// The fewest bytes a sequence takes (id, flags, start position, token count): bounds the count before allocating.
constexpr size_t kMinSequenceBytes = 4;

constexpr size_t kSamplingBytes = 42;
using SamplingImage = std::array<std::byte, kSamplingBytes>;

SamplingImage sampling_image(const SamplingSettings& s) {
  SamplingImage image;
  size_t at = 0;
  const auto put = [&](const auto& field) {
    std::memcpy(image.data() + at, &field, sizeof(field));
    at += sizeof(field);
  };
  put(s.temperature);
  put(s.top_k);
  put(s.top_p);
  put(s.min_p);
  put(s.seed);
  put(s.repetition_penalty);
  put(s.frequency_penalty);
  put(s.presence_penalty);
  put(s.prompt_length);
  put(s.logprobs);
  put(s.prompt_logprobs);
  return image;
}

SamplingSettings read_sampling(WireReader& in) {
  SamplingSettings s;
  s.temperature = in.get<float>();
  s.top_k = in.get<int32_t>();
  s.top_p = in.get<float>();
  s.min_p = in.get<float>();
  s.seed = in.get<uint64_t>();
  s.repetition_penalty = in.get<float>();
  s.frequency_penalty = in.get<float>();
  s.presence_penalty = in.get<float>();
  s.prompt_length = in.get<int32_t>();
  s.logprobs = in.get<int8_t>();
  s.prompt_logprobs = in.get<int8_t>();
  return s;
}

// Bit for bit: -0.0 is not 0.0 and a NaN equals itself, so the decoded plan is the encoded one exactly.
bool same_bits(const SamplingSettings& a, const SamplingSettings& b) {
  const auto bits = [](float f) { return std::bit_cast<uint32_t>(f); };
  return bits(a.temperature) == bits(b.temperature) && a.top_k == b.top_k && bits(a.top_p) == bits(b.top_p) &&
         bits(a.min_p) == bits(b.min_p) && a.seed == b.seed &&
         bits(a.repetition_penalty) == bits(b.repetition_penalty) &&
         bits(a.frequency_penalty) == bits(b.frequency_penalty) &&
         bits(a.presence_penalty) == bits(b.presence_penalty) && a.prompt_length == b.prompt_length &&
         a.logprobs == b.logprobs && a.prompt_logprobs == b.prompt_logprobs;
}

uint64_t mix64(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

constexpr uint64_t kTableSeed = 0x243f6a8885a308d3ull;

// A rolling hash: extending the hash of a table by its appended blocks gives the hash of the whole new table.
uint64_t extend_table_hash(uint64_t h, std::span<const int32_t> blocks) {
  for (const int32_t b : blocks) h = mix64(h ^ (0x9e3779b97f4a7c15ull + static_cast<uint32_t>(b)));
  return h;
}

uint64_t sampling_hash(const SamplingSettings& s) {
  const SamplingImage image = sampling_image(s);
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (const std::byte b : image) h = (h ^ static_cast<uint8_t>(b)) * 0x100000001b3ull;
  return mix64(h);
}

uint64_t entry_hash(uint64_t id, const StepPlanMirror::Known& k) {
  return mix64(mix64(id ^ 0x452821e638d01377ull) ^ k.table_hash) + mix64(k.sampling_hash ^ 0x13198a2e03707344ull);
}

uint64_t zigzag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t unzigzag(uint64_t u) { return static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1); }

void put_tokens(WireWriter& out, std::span<const int32_t> tokens) {
  out.put_varint(tokens.size());
  for (const int32_t t : tokens) out.put_varint(static_cast<uint32_t>(t));
}

void put_blocks(WireWriter& out, std::span<const int32_t> blocks, int32_t previous) {
  out.put_varint(blocks.size());
  int64_t prev = previous;
  for (const int32_t b : blocks) {
    out.put_varint(zigzag(int64_t{b} - prev));
    prev = b;
  }
}

// A count of elements of at least one byte each: more than the message has left is a corrupt message, never an
// allocation.
size_t get_count(WireReader& in, const char* what, uint64_t id) {
  const uint64_t n = in.get_varint();
  TESSERA_CHECK(n <= in.remaining(), "sequence ", id, " claims ", n, " ", what, " but the message has ",
                in.remaining(), " bytes left");
  return static_cast<size_t>(n);
}

template <class Tokens>  // std::vector<int32_t> or TokenList
void get_tokens(WireReader& in, size_t n, Tokens& tokens) {
  tokens.resize(n);
  for (int32_t& t : tokens) t = static_cast<int32_t>(static_cast<uint32_t>(in.get_varint(32)));
}

void get_blocks(WireReader& in, size_t n, int32_t previous, std::vector<int32_t>& table, uint64_t id) {
  int64_t prev = previous;
  for (size_t i = 0; i < n; ++i) {
    // 34 bits hold the difference of any two int32 values, and their sum cannot overflow.
    const int64_t b = prev + unzigzag(in.get_varint(34));
    TESSERA_CHECK(b >= std::numeric_limits<int32_t>::min() && b <= std::numeric_limits<int32_t>::max(),
                  "sequence ", id, " has a block id out of range (", b, ")");
    table.push_back(static_cast<int32_t>(b));
    prev = b;
  }
}

// The mirror's entry for each sequence of one plan, refusing an id that occurs twice: a duplicate would be a
// scheduler bug (two sequences writing one KV cache), and rejecting it bounds what a decoded plan holds by what the
// mirror holds plus the message.
class PlanLookup {
 public:
  explicit PlanLookup(StepPlanMirror& mirror) : mirror_(mirror), epoch_(mirror.next_epoch()) {}
  StepPlanMirror::Known* find_once(uint64_t id) {
    StepPlanMirror::Known* k = mirror_.find(id);
    if (k != nullptr) {
      TESSERA_CHECK(k->seen_in != epoch_, "sequence ", id, " occurs twice in the plan");
      k->seen_in = epoch_;
    } else {
      TESSERA_CHECK(fresh_.insert(id).second, "sequence ", id, " occurs twice in the plan");
    }
    return k;
  }

 private:
  StepPlanMirror& mirror_;
  uint64_t epoch_;
  std::unordered_set<uint64_t> fresh_;
};

}  // namespace

const StepPlanMirror::Known* StepPlanMirror::find(uint64_t id) const {
  const std::optional<int32_t> at = positions_.find(FlatHashIndex::mix_key(id));
  return at ? &known_[static_cast<size_t>(*at)] : nullptr;
}

StepPlanMirror::Known* StepPlanMirror::find(uint64_t id) {
  return const_cast<Known*>(std::as_const(*this).find(id));
}

void StepPlanMirror::erase(uint64_t id) {
  const uint64_t key = FlatHashIndex::mix_key(id);
  const std::optional<int32_t> at = positions_.find(key);
  if (!at) return;  // e.g. cancelled while it waited: no plan ever carried it
  const auto i = static_cast<size_t>(*at);
  digest_ -= entry_hash(id, known_[i]);
  if (i + 1 != known_.size()) {
    known_[i] = std::move(known_.back());
    positions_.assign(FlatHashIndex::mix_key(known_[i].id), *at);
  }
  known_.pop_back();
  positions_.erase(key);
}

void StepPlanMirror::apply(const StepPlan& plan, std::span<const Coded> coded) {
  TESSERA_CHECK(coded.empty() || coded.size() == plan.sequences.size(), "step ", plan.step_index, ": ", coded.size(),
                " coded sequences for ", plan.sequences.size());
  for (size_t i = 0; i < plan.sequences.size(); ++i) {
    const SequenceStep& s = plan.sequences[i];
    const Coded c = coded.empty() ? Coded{} : coded[i];
    // Positions, not pointers, travel in `coded`: an entry added earlier in this loop may have moved the array.
    Known* k = coded.empty() ? find(s.sequence_id) : c.known >= 0 ? &known_[static_cast<size_t>(c.known)] : nullptr;
    if (k != nullptr && c.table == 0 && c.same_sampling) {  // unchanged: so are its hashes and the digest
      if (!k->block_table.shares_storage_with(s.block_table)) k->block_table = s.block_table;
      continue;
    }
    const BlockTable& table = s.block_table;
    if (k == nullptr) {
      positions_.insert(FlatHashIndex::mix_key(s.sequence_id), static_cast<int32_t>(known_.size()));
      k = &known_.emplace_back();
      k->id = s.sequence_id;
      k->block_table = table;
      k->table_hash = extend_table_hash(kTableSeed, table.span());
      k->sampling = s.sampling;
      k->sampling_hash = sampling_hash(s.sampling);
    } else {
      digest_ -= entry_hash(s.sequence_id, *k);
      const size_t old = k->block_table.size();
      const bool prefix = c.table == 0 || c.table == 1 ||
                          (c.table == 3 && old <= table.size() &&
                           std::equal(k->block_table.begin(), k->block_table.end(), table.begin()));
      if (prefix) {
        k->table_hash = extend_table_hash(k->table_hash, table.span().subspan(old));
      } else {
        k->table_hash = extend_table_hash(kTableSeed, table.span());
      }
      k->block_table = table;  // shares the plan's storage: the next plan that carries it unchanged compares nothing
      if (!c.same_sampling && !same_bits(k->sampling, s.sampling)) {
        k->sampling = s.sampling;
        k->sampling_hash = sampling_hash(s.sampling);
      }
    }
    digest_ += entry_hash(s.sequence_id, *k);
  }
  for (const uint64_t id : plan.finished) erase(id);
  ++plans_;
}

std::vector<std::byte> StepPlanEncoder::encode(const StepPlan& plan) {
  WireWriter out;
  out.reserve(40 + plan.sequences.size() * 12 + plan.finished.size() * 4);
  out.put<uint32_t>(kMagic);
  out.put<uint32_t>(kVersion);
  out.put_varint(plan.step_index);
  out.put_varint(mirror_.plans());
  out.put_varint(mirror_.size());
  out.put<uint32_t>(mirror_.digest32());
  out.put<uint8_t>(static_cast<uint8_t>((plan.shutdown ? kPlanShutdown : 0) | (plan.heartbeat ? kPlanHeartbeat : 0)));
  out.put<uint8_t>(plan.micro_batch);
  out.put_varint(plan.sequences.size());
  PlanLookup lookup(mirror_);
  coded_.clear();
  for (const SequenceStep& s : plan.sequences) {
    StepPlanMirror::Known* known = nullptr;
    try {
      known = lookup.find_once(s.sequence_id);
    } catch (const Error& e) {
      fail("step ", plan.step_index, ": ", e.what());
    }
    uint8_t flags = static_cast<uint8_t>((s.sample ? kSample : 0) | (s.history_reset ? kHistoryReset : 0) |
                                         (s.history_prefix.empty() ? 0 : kHistoryPrefix) |
                                         (s.prompt_logprob_targets.empty() ? 0 : kPromptTargets));
    TableMode mode = kReplaceTable;
    if (known == nullptr) {
      flags |= kNew | kSampling;
    } else {
      const BlockTable& old = known->block_table;
      if (old.shares_storage_with(s.block_table)) {
        mode = kSameTable;
      } else if (old.size() <= s.block_table.size() && std::equal(old.begin(), old.end(), s.block_table.begin())) {
        mode = old.size() == s.block_table.size() ? kSameTable : kAppendTable;
      }
      if (!same_bits(known->sampling, s.sampling)) flags |= kSampling;
    }
    flags |= static_cast<uint8_t>(mode << kModeShift);
    coded_.push_back({mirror_.position_of(known), mode, (flags & kSampling) == 0});
    out.put_varint(s.sequence_id);
    out.put<uint8_t>(flags);
    out.put_varint(static_cast<uint32_t>(s.start_position));
    put_tokens(out, s.new_tokens.span());
    if (mode == kAppendTable) {
      const size_t old = known->block_table.size();
      put_blocks(out, s.block_table.span().subspan(old), old == 0 ? 0 : known->block_table.back());
    } else if (mode == kReplaceTable) {
      put_blocks(out, s.block_table.span(), 0);
    }
    if ((flags & kSampling) != 0) {
      out.put(sampling_image(s.sampling));
    }
    if ((flags & kHistoryPrefix) != 0) put_tokens(out, s.history_prefix);
    if ((flags & kPromptTargets) != 0) put_tokens(out, s.prompt_logprob_targets);
  }
  out.put_varint(plan.finished.size());
  for (const uint64_t id : plan.finished) out.put_varint(id);
  mirror_.apply(plan, coded_);
  return out.take();
}

StepPlan StepPlanDecoder::decode(std::span<const std::byte> bytes) {
  WireReader in(bytes, "delta step plan");
  const auto magic = in.get<uint32_t>();
  TESSERA_CHECK(magic != StepPlan::kMagic, "a full step plan (magic PSPT) reached the delta decoder: the leader "
                "encodes step plans differently from this rank (all ranks must run the same tessera binary)");
  TESSERA_CHECK(magic == StepPlanEncoder::kMagic, "not a delta step plan: magic 0x", std::hex, magic);
  const auto version = in.get<uint32_t>();
  TESSERA_CHECK(version == StepPlanEncoder::kVersion, "delta step plan version ", version,
                " but this build speaks version ", StepPlanEncoder::kVersion,
                ": all ranks must run the same tessera binary");
  StepPlan plan;
  plan.step_index = in.get_varint();
  try {
    const uint64_t plans = in.get_varint();
    const uint64_t live = in.get_varint();
    const auto digest = in.get<uint32_t>();
    TESSERA_CHECK(plans == mirror_.plans(), "the leader encoded it after ", plans, " plans but this rank has decoded ",
                  mirror_.plans(), ": a plan was lost, repeated or decoded out of order, and this rank's view of the "
                  "running sequences has drifted from the leader's");
    TESSERA_CHECK(live == mirror_.size() && digest == mirror_.digest32(), "this rank's view of the running sequences (",
                  mirror_.size(), " sequences, hash 0x", std::hex, mirror_.digest32(), std::dec,
                  ") has drifted from the leader's (", live, " sequences, hash 0x", std::hex, digest, ")");
    const auto flags = in.get<uint8_t>();
    TESSERA_CHECK(flags <= (kPlanShutdown | kPlanHeartbeat), "unknown plan flags 0x", std::hex, int{flags});
    plan.shutdown = (flags & kPlanShutdown) != 0;
    plan.heartbeat = (flags & kPlanHeartbeat) != 0;
    plan.micro_batch = in.get<uint8_t>();
    const uint64_t count = in.get_varint();
    TESSERA_CHECK(count <= in.remaining() / kMinSequenceBytes, "the plan claims ", count, " sequences in ",
                  in.remaining(), " bytes");
    plan.sequences.resize(static_cast<size_t>(count));
    PlanLookup lookup(mirror_);
    coded_.clear();
    coded_.reserve(plan.sequences.size());
    for (SequenceStep& s : plan.sequences) {
      const uint64_t id = in.get_varint();
      s.sequence_id = id;
      const auto f = in.get<uint8_t>();
      const auto mode = static_cast<uint8_t>((f >> kModeShift) & 3);
      TESSERA_CHECK(mode <= kReplaceTable, "sequence ", id, " has an unknown block table mode ", int{mode});
      StepPlanMirror::Known* known = lookup.find_once(id);
      coded_.push_back({mirror_.position_of(known), mode, (f & kSampling) == 0});
      if ((f & kNew) != 0) {
        TESSERA_CHECK(mode == kReplaceTable && (f & kSampling) != 0, "new sequence ", id,
                      " comes without its block table or sampling settings");
        TESSERA_CHECK(known == nullptr, "the leader introduces sequence ", id, " but this rank already knows it: "
                      "this rank's view of the running sequences has drifted from the leader's");
      } else {
        TESSERA_CHECK(known != nullptr, "the leader updates sequence ", id, " but this rank does not know it: "
                      "this rank's view of the running sequences has drifted from the leader's");
      }
      s.sample = (f & kSample) != 0;
      s.history_reset = (f & kHistoryReset) != 0;
      const uint64_t start = in.get_varint(32);
      TESSERA_CHECK(start <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max()), "sequence ", id,
                    " has negative start position ", static_cast<int32_t>(static_cast<uint32_t>(start)));
      s.start_position = static_cast<int32_t>(start);
      get_tokens(in, get_count(in, "new tokens", id), s.new_tokens);
      if (mode == kSameTable) {
        s.block_table = known->block_table;
      } else if (mode == kAppendTable) {
        const size_t n = get_count(in, "appended blocks", id);
        TESSERA_CHECK(n >= 1, "sequence ", id, " appends no blocks");
        std::vector<int32_t> table;
        table.reserve(known->block_table.size() + n);
        table.assign(known->block_table.begin(), known->block_table.end());
        get_blocks(in, n, known->block_table.empty() ? 0 : known->block_table.back(), table, id);
        s.block_table = std::move(table);
      } else {
        const size_t n = get_count(in, "blocks", id);
        std::vector<int32_t> table;
        table.reserve(n);
        get_blocks(in, n, 0, table, id);
        s.block_table = std::move(table);
      }
      s.sampling = (f & kSampling) != 0 ? read_sampling(in) : known->sampling;
      if ((f & kHistoryPrefix) != 0) {
        const size_t n = get_count(in, "history tokens", id);
        TESSERA_CHECK(n >= 1, "sequence ", id, " announces an empty history prefix");
        get_tokens(in, n, s.history_prefix);
      }
      if ((f & kPromptTargets) != 0) {
        const size_t n = get_count(in, "prompt logprob targets", id);
        TESSERA_CHECK(n >= 1, "sequence ", id, " announces empty prompt logprob targets");
        get_tokens(in, n, s.prompt_logprob_targets);
      }
    }
    const uint64_t finished = in.get_varint();
    TESSERA_CHECK(finished <= in.remaining(), "the plan claims ", finished, " finished sequences in ",
                  in.remaining(), " bytes");
    plan.finished.resize(static_cast<size_t>(finished));
    for (uint64_t& id : plan.finished) id = in.get_varint();
    TESSERA_CHECK(in.at_end(), in.remaining(), " trailing bytes");
  } catch (const Error& e) {
    fail("delta step plan of step ", plan.step_index, ": ", e.what());
  }
  mirror_.apply(plan, coded_);
  return plan;
}

}  // namespace tessera::parallel
