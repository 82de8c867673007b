// Fuzzes the StepPlan wire decoder (parallel/step_plan.h), which every follower rank runs on the bytes the leader
// broadcasts: arbitrary bytes must decode or throw tessera::Error (wrong magic or version, truncation, lengths past
// the end, trailing bytes), never read out of bounds or allocate what the message cannot hold. What decodes
// re-encodes to as many bytes, and that encoding is a fixed point (decode and encode again: the same bytes).
// Seeds: tests/fuzz/corpus/fuzz_step_plan/ (encodings of real plans, made by scripts/fuzz/step_plan_seeds.py).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "kernels/base/error.h"
#include "parallel/step_plan.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera::parallel;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  StepPlan plan;
  try {
    plan = decode_step_plan(bytes);
  } catch (const tessera::Error&) {
    return 0;  // a corrupt message: the follower reports it
  }
  const std::vector<std::byte> again = encode_step_plan(plan);
  check(again.size() == size);
  check(encode_step_plan(decode_step_plan(again)) == again);
  for (const SequenceStep& s : plan.sequences) check(s.start_position >= 0);
  return 0;
}
