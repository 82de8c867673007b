#include "runtime/engine/stage_executor.h"

#include "kernels/base/error.h"
#include "kernels/cpu/sampling.h"

namespace tessera::runtime {

int sampling_rank(const parallel::Topology& topology) { return topology.rank_of(topology.pp() - 1, 0); }

StageExecutor::StageExecutor(const parallel::Topology& topology, parallel::ProcessGroups& groups,
                             ModelStage& stage)
    : topology_(topology), groups_(groups), stage_(stage) {}

ForwardBatch StageExecutor::make_batch(const parallel::StepPlan& plan) const {
  ForwardBatch batch;
  for (const parallel::SequenceStep& s : plan.sequences) {
    BatchSequence seq;
    seq.token_begin = batch.num_tokens();
    seq.token_count = static_cast<int64_t>(s.new_tokens.size());
    seq.start_position = s.start_position;
    seq.block_table = s.block_table;
    seq.sample = s.sample;
    for (size_t i = 0; i < s.new_tokens.size(); ++i) {
      batch.tokens.push_back(s.new_tokens[i]);
      batch.positions.push_back(s.start_position + static_cast<int32_t>(i));
    }
    batch.sequences.push_back(std::move(seq));
  }
  return batch;
}

std::vector<SampledToken> StageExecutor::execute(const parallel::StepPlan& plan) {
  const ForwardBatch batch = make_batch(plan);
  const std::vector<int64_t> rows = batch.sampled_rows();
  if (batch.num_tokens() == 0) return {};
  const int64_t hidden_size = stage_.config().hidden_size;
  const size_t hidden_bytes = static_cast<size_t>(batch.num_tokens() * hidden_size) * sizeof(float);

  Tensor hidden;
  if (topology_.is_first_stage()) {
    stage_.embed(batch, hidden);
  } else {
    hidden = Tensor(DType::F32, {batch.num_tokens(), hidden_size});
    groups_.pipeline->recv(hidden.raw(), hidden_bytes, topology_.stage() - 1, parallel::MessageTag::kHiddenStates);
  }
  stage_.run_layers(batch, hidden);
  if (!topology_.is_last_stage()) {
    groups_.pipeline->send(hidden.raw(), hidden_bytes, topology_.stage() + 1, parallel::MessageTag::kHiddenStates);
  }

  // The ids travel from the sampling rank to the leader (they are the same rank when pp == 1).
  const int sampler = sampling_rank(topology_);
  std::vector<int32_t> ids(rows.size());
  if (topology_.is_last_stage() && !rows.empty()) {
    Tensor logits;
    stage_.logits(hidden, rows, logits);
    if (topology_.rank() == sampler) {
      if (observer_) observer_(plan, logits);
      const std::vector<SampledToken> sampled = sample(plan, logits);
      for (size_t i = 0; i < sampled.size(); ++i) ids[i] = sampled[i].token;
      if (sampler != 0) {
        groups_.world->send(ids.data(), ids.size() * sizeof(int32_t), 0, parallel::MessageTag::kSampledTokens);
      }
    }
  }
  if (topology_.rank() != 0) return {};
  if (sampler != 0 && !rows.empty()) {
    groups_.world->recv(ids.data(), ids.size() * sizeof(int32_t), sampler, parallel::MessageTag::kSampledTokens);
  }
  std::vector<SampledToken> result;
  size_t next = 0;
  for (const parallel::SequenceStep& s : plan.sequences) {
    if (s.sample && !s.new_tokens.empty()) result.push_back({s.sequence_id, ids[next++]});
  }
  return result;
}

std::vector<SampledToken> StageExecutor::sample(const parallel::StepPlan& plan, const Tensor& logits) const {
  std::vector<SampledToken> out;
  const int64_t vocab = logits.shape()[1];
  int64_t row = 0;
  for (const parallel::SequenceStep& s : plan.sequences) {
    if (!s.sample || s.new_tokens.empty()) continue;
    kernels::cpu::SamplingParams params;
    params.temperature = s.sampling.temperature;
    params.top_k = s.sampling.top_k;
    params.top_p = s.sampling.top_p;
    params.min_p = s.sampling.min_p;
    params.seed = s.sampling.seed;
    // The position of the token being sampled identifies the step: replays draw the same numbers.
    const auto step = static_cast<uint64_t>(s.start_position) + s.new_tokens.size();
    const int32_t token = kernels::cpu::sample_token(logits.data<float>() + row * vocab, vocab, params, step);
    out.push_back({s.sequence_id, token});
    ++row;
  }
  return out;
}

}  // namespace tessera::runtime
