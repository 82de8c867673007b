// Fuzzes the step plan decoders that every follower rank runs on the bytes the leader broadcasts: arbitrary bytes
// must decode or throw tessera::Error (wrong magic or version, truncation, lengths past the end, trailing bytes,
// a message encoded against another mirror), never read out of bounds or allocate what the message cannot hold.
// Each input feeds both:
//  - the stateless full form (parallel/step_plan.h), as one message: what decodes re-encodes to as many bytes, and
//    that encoding is a fixed point (decode and encode again: the same bytes);
//  - the delta form (parallel/step_plan_delta.h), as a stream of frames (a u16 little-endian length, then that many
//    bytes: one message; a short last frame takes what is left) for one fresh StepPlanDecoder. A frame that throws
//    leaves the decoder as it was; a frame that decodes is re-encoded by a StepPlanEncoder that has seen every
//    accepted plan, into no more bytes than the frame, and a second decoder rebuilds the same plan from that,
//    bit for bit; encoder and decoders keep the same mirror.
// Seeds: tests/fuzz/corpus/fuzz_step_plan/: full plans made by scripts/fuzz/step_plan_seeds.py, delta streams
// (delta_*.bin) made from the real scheduler's plans by tests/parallel/test_step_plan_delta_scheduler.cpp
// (TESSERA_UPDATE_FUZZ_SEEDS=1).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "kernels/base/error.h"
#include "parallel/step_plan.h"
#include "parallel/step_plan_delta.h"

namespace {

using namespace tessera::parallel;

void check(bool condition) {
  if (!condition) std::abort();
}

struct MirrorState {
  uint64_t plans, size, digest;
  explicit MirrorState(const StepPlanMirror& m) : plans(m.plans()), size(m.size()), digest(m.digest()) {}
  bool operator==(const MirrorState&) const = default;
};

bool same_mirror(const StepPlanMirror& a, const StepPlanMirror& b) { return MirrorState(a) == MirrorState(b); }

void fuzz_full(std::span<const std::byte> bytes) {
  StepPlan plan;
  try {
    plan = decode_step_plan(bytes);
  } catch (const tessera::Error&) {
    return;  // a corrupt message: the follower reports it
  }
  const std::vector<std::byte> again = encode_step_plan(plan);
  check(again.size() == bytes.size());
  check(encode_step_plan(decode_step_plan(again)) == again);
  for (const SequenceStep& s : plan.sequences) check(s.start_position >= 0);
}

void fuzz_delta(std::span<const std::byte> bytes) {
  StepPlanDecoder decoder;  // fed the fuzzed frames
  StepPlanEncoder encoder;  // fed the plans the decoder accepted
  StepPlanDecoder shadow;   // fed the encoder's messages
  size_t at = 0;
  while (at < bytes.size()) {
    size_t n = bytes.size() - at;
    if (n >= 2) {
      const size_t length = static_cast<size_t>(bytes[at]) | static_cast<size_t>(bytes[at + 1]) << 8;
      at += 2;
      n = std::min(length, bytes.size() - at);
    }
    const std::span<const std::byte> frame = bytes.subspan(at, n);
    at += n;
    const MirrorState before(decoder.mirror());
    StepPlan plan;
    try {
      plan = decoder.decode(frame);
    } catch (const tessera::Error&) {
      check(MirrorState(decoder.mirror()) == before);
      continue;
    }
    for (const SequenceStep& s : plan.sequences) check(s.start_position >= 0);
    const std::vector<std::byte> again = encoder.encode(plan);
    check(again.size() <= frame.size());
    check(encode_step_plan(shadow.decode(again)) == encode_step_plan(plan));
    check(same_mirror(encoder.mirror(), decoder.mirror()));
    check(same_mirror(shadow.mirror(), decoder.mirror()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  fuzz_full(bytes);
  fuzz_delta(bytes);
  return 0;
}
