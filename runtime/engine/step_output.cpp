#include "runtime/engine/step_output.h"

#include "parallel/wire_format.h"

namespace tessera::runtime {
namespace {

constexpr uint32_t kMagic = 0x54534f55;  // "UOST"

void put_row(parallel::WireWriter& out, const kernels::cpu::RowLogprobs& row) {
  out.put<int32_t>(row.chosen.id);
  out.put<float>(row.chosen.logprob);
  out.put_vector(row.top);
}

kernels::cpu::RowLogprobs get_row(parallel::WireReader& in) {
  kernels::cpu::RowLogprobs row;
  row.chosen.id = in.get<int32_t>();
  row.chosen.logprob = in.get<float>();
  row.top = in.get_vector<kernels::cpu::TokenLogprob>();
  return row;
}

}  // namespace

std::vector<std::byte> encode_step_outputs(std::span<const StepOutput> outputs) {
  parallel::WireWriter out;
  out.put<uint32_t>(kMagic);
  out.put<uint32_t>(static_cast<uint32_t>(outputs.size()));
  for (const StepOutput& o : outputs) {
    out.put<uint64_t>(o.sequence_id);
    out.put<uint8_t>(o.sampled ? 1 : 0);
    out.put<int32_t>(o.token);
    out.put<uint8_t>(o.logprobs ? 1 : 0);
    if (o.logprobs) put_row(out, *o.logprobs);
    out.put<uint32_t>(static_cast<uint32_t>(o.prompt_logprobs.size()));
    for (const auto& row : o.prompt_logprobs) put_row(out, row);
  }
  return out.take();
}

std::vector<StepOutput> decode_step_outputs(std::span<const std::byte> bytes) {
  parallel::WireReader in(bytes, "step outputs");
  TESSERA_CHECK(in.get<uint32_t>() == kMagic, "not a step-output message");
  const auto count = in.get<uint32_t>();
  TESSERA_CHECK(count <= bytes.size() / 18, "step outputs claim ", count, " entries in ", bytes.size(), " bytes");
  std::vector<StepOutput> outputs(count);
  for (StepOutput& o : outputs) {
    o.sequence_id = in.get<uint64_t>();
    o.sampled = in.get<uint8_t>() != 0;
    o.token = in.get<int32_t>();
    if (in.get<uint8_t>() != 0) o.logprobs = get_row(in);
    const auto rows = in.get<uint32_t>();
    TESSERA_CHECK(rows <= bytes.size() / 12, "step outputs claim ", rows, " prompt rows in ", bytes.size(), " bytes");
    o.prompt_logprobs.reserve(rows);
    for (uint32_t r = 0; r < rows; ++r) o.prompt_logprobs.push_back(get_row(in));
  }
  TESSERA_CHECK(in.at_end(), "step outputs have ", bytes.size() - in.offset(), " trailing bytes");
  return outputs;
}

}  // namespace tessera::runtime
