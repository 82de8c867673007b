#include "parallel/step_plan.h"

#include "parallel/wire_format.h"

namespace tessera::parallel {

std::vector<std::byte> encode_step_plan(const StepPlan& plan) {
  WireWriter out;
  // The exact size, reserved: growing a buffer of a few hundred KB in steps costs more than writing it.
  size_t bytes = 4 + 4 + 8 + 1 + 1 + 4 + 8 * plan.finished.size() + 4;
  for (const SequenceStep& s : plan.sequences) {
    bytes += 8 + 4 + 1 + 42 + 1 + 4 * (4 + s.new_tokens.size() + s.block_table.size() + s.history_prefix.size() +
                                       s.prompt_logprob_targets.size());
  }
  out.reserve(bytes);
  out.put<uint32_t>(StepPlan::kMagic);
  out.put<uint32_t>(StepPlan::kVersion);
  out.put<uint64_t>(plan.step_index);
  out.put<uint8_t>(plan.micro_batch);
  out.put<uint8_t>(static_cast<uint8_t>((plan.shutdown ? 1 : 0) | (plan.heartbeat ? 2 : 0)));
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
    out.put<float>(s.sampling.repetition_penalty);
    out.put<float>(s.sampling.frequency_penalty);
    out.put<float>(s.sampling.presence_penalty);
    out.put<int32_t>(s.sampling.prompt_length);
    out.put<int8_t>(s.sampling.logprobs);
    out.put<int8_t>(s.sampling.prompt_logprobs);
    out.put<uint8_t>(s.history_reset ? 1 : 0);
    out.put_span(s.new_tokens.span());
    out.put_span(s.block_table.span());
    out.put_vector(s.history_prefix);
    out.put_vector(s.prompt_logprob_targets);
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
  plan.micro_batch = in.get<uint8_t>();
  const auto flags = in.get<uint8_t>();
  TESSERA_CHECK(flags <= 3, "step plan has unknown flags 0x", std::hex, int{flags});
  plan.shutdown = (flags & 1) != 0;
  plan.heartbeat = (flags & 2) != 0;
  plan.finished = in.get_vector<uint64_t>();
  const auto count = in.get<uint32_t>();
  // Each sequence takes at least 72 bytes: a count that cannot fit is a corrupt message, not an allocation.
  TESSERA_CHECK(count <= bytes.size() / 72, "step plan claims ", count, " sequences in ", bytes.size(), " bytes");
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
    s.sampling.repetition_penalty = in.get<float>();
    s.sampling.frequency_penalty = in.get<float>();
    s.sampling.presence_penalty = in.get<float>();
    s.sampling.prompt_length = in.get<int32_t>();
    s.sampling.logprobs = in.get<int8_t>();
    s.sampling.prompt_logprobs = in.get<int8_t>();
    s.history_reset = in.get<uint8_t>() != 0;
    s.new_tokens = in.get_vector<int32_t>();
    s.block_table = in.get_vector<int32_t>();
    s.history_prefix = in.get_vector<int32_t>();
    s.prompt_logprob_targets = in.get_vector<int32_t>();
    TESSERA_CHECK(s.start_position >= 0, "step plan: sequence ", s.sequence_id, " has negative start position ",
                  s.start_position);
  }
  TESSERA_CHECK(in.at_end(), "step plan has ", bytes.size() - in.offset(), " trailing bytes");
  return plan;
}

}  // namespace tessera::parallel
