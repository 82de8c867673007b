#include "parallel/step_plan.h"

#include "parallel/wire_format.h"

namespace tessera::parallel {

std::vector<std::byte> encode_step_plan(const StepPlan& plan) {
  WireWriter out;
  out.put<uint32_t>(StepPlan::kMagic);
  out.put<uint32_t>(StepPlan::kVersion);
  out.put<uint64_t>(plan.step_index);
  out.put<uint8_t>(plan.shutdown ? 1 : 0);
  out.put_vector(plan.finished);
  out.put<uint32_t>(static_cast<uint32_t>(plan.sequences.size()));
  for (const SequenceStep& s : plan.sequences) {
    out.put<uint64_t>(s.sequence_id);
    out.put<int32_t>(s.start_position);
    out.put<uint8_t>(s.sample ? 1 : 0);
    out.put<float>(s.sampling.temperature);
    out.put<int32_t>(s.sampling.top_k);
    out.put<float>(s.sampling.top_p);
    out.put<float>(s.sampling.min_p);
    out.put<uint64_t>(s.sampling.seed);
    out.put_vector(s.new_tokens);
    out.put_vector(s.block_table);
  }
  return out.take();
}

StepPlan decode_step_plan(std::span<const std::byte> bytes) {
  WireReader in(bytes, "step plan");
  const auto magic = in.get<uint32_t>();
  TESSERA_CHECK(magic == StepPlan::kMagic, "not a step plan: magic 0x", std::hex, magic);
  const auto version = in.get<uint32_t>();
  TESSERA_CHECK(version == StepPlan::kVersion, "step plan version ", version, " but this build speaks version ",
                StepPlan::kVersion, ": all ranks must run the same tessera binary");
  StepPlan plan;
  plan.step_index = in.get<uint64_t>();
  plan.shutdown = in.get<uint8_t>() != 0;
  plan.finished = in.get_vector<uint64_t>();
  const auto count = in.get<uint32_t>();
  // Each sequence takes at least 45 bytes: a count that cannot fit is a corrupt message, not an allocation.
  TESSERA_CHECK(count <= bytes.size() / 45, "step plan claims ", count, " sequences in ", bytes.size(), " bytes");
  plan.sequences.resize(count);
  for (SequenceStep& s : plan.sequences) {
    s.sequence_id = in.get<uint64_t>();
    s.start_position = in.get<int32_t>();
    s.sample = in.get<uint8_t>() != 0;
    s.sampling.temperature = in.get<float>();
    s.sampling.top_k = in.get<int32_t>();
    s.sampling.top_p = in.get<float>();
    s.sampling.min_p = in.get<float>();
    s.sampling.seed = in.get<uint64_t>();
    s.new_tokens = in.get_vector<int32_t>();
    s.block_table = in.get_vector<int32_t>();
    TESSERA_CHECK(s.start_position >= 0, "step plan: sequence ", s.sequence_id, " has negative start position ",
                  s.start_position);
  }
  TESSERA_CHECK(in.at_end(), "step plan has ", bytes.size() - in.offset(), " trailing bytes");
  return plan;
}

void broadcast_step_plan(Communicator& group, StepPlan& plan, int root) {
  std::vector<std::byte> bytes;
  uint64_t size = 0;
  if (group.rank() == root) {
    bytes = encode_step_plan(plan);
    size = bytes.size();
  }
  group.broadcast(&size, sizeof(size), root);
  if (group.rank() != root) bytes.resize(size);
  group.broadcast(bytes.data(), bytes.size(), root);
  if (group.rank() != root) plan = decode_step_plan(bytes);
}

}  // namespace tessera::parallel
