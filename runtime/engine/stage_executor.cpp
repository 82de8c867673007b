#include "runtime/engine/stage_executor.h"

#include <algorithm>
#include <cstring>

#include "kernels/base/error.h"
#include "kernels/cpu/logprobs.h"

namespace tessera::runtime {
namespace {

bool has_prompt_rows(const parallel::SequenceStep& s) {
  return s.sampling.prompt_logprobs >= 0 && !s.prompt_logprob_targets.empty();
}

}  // namespace

int sampling_rank(const parallel::Topology& topology) { return topology.rank_of(topology.pp() - 1, 0); }

bool reports_output(const parallel::SequenceStep& s) {
  return !s.new_tokens.empty() && (s.sample || has_prompt_rows(s));
}

StageExecutor::StageExecutor(const parallel::Topology& topology, parallel::ProcessGroups& groups,
                             ModelStage& stage, Transfer transfer)
    : topology_(topology),
      groups_(groups),
      stage_(stage),
      transfer_(topology.tp() > 1 ? transfer : Transfer::kFull),
      trace_(StageTrace::from_environment(topology)) {}

StageExecutor::RowShare StageExecutor::row_share(int64_t rows) const {
  RowShare share;
  share.per = (rows + topology_.tp() - 1) / topology_.tp();
  share.begin = std::min(rows, share.per * topology_.tp_rank());
  share.end = std::min(rows, share.begin + share.per);
  return share;
}

Tensor StageExecutor::receive_hidden(int64_t rows, int64_t hidden_size) {
  const int previous = topology_.stage() - 1;
  Tensor hidden(DType::F32, {rows, hidden_size});
  if (transfer_ == Transfer::kFull) {
    groups_.pipeline->recv(parallel::host_span(hidden.span<float>()), previous, parallel::MessageTag::kHiddenStates);
    return hidden;
  }
  // My share of the rows from my peer of the previous stage, then every share from my TP group.
  const RowShare share = row_share(rows);
  const auto share_elements = static_cast<size_t>(share.per * hidden_size);
  std::vector<float> mine(share_elements, 0.0f);
  groups_.pipeline->recv(parallel::host_span(mine.data(), static_cast<size_t>((share.end - share.begin) * hidden_size)),
                         previous, parallel::MessageTag::kHiddenStates);
  std::vector<float> all(share_elements * static_cast<size_t>(topology_.tp()));
  groups_.tp->all_gather(parallel::host_span(mine), parallel::host_span(all));
  std::memcpy(hidden.raw(), all.data(), static_cast<size_t>(rows * hidden_size) * sizeof(float));
  return hidden;
}

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

bool PendingStepOutputs::ready() { return world_ == nullptr || size_received_.test(); }

std::vector<StepOutput> PendingStepOutputs::wait() {
  if (world_ == nullptr) return std::move(outputs_);
  size_received_.wait();
  const uint64_t size = *size_;
  TESSERA_CHECK(size <= (uint64_t{1} << 31), "step ", step_, ": sampling rank announced ", size, " bytes of results");
  std::vector<std::byte> bytes(size);
  world_->recv(parallel::host_span(bytes), sampler_, parallel::MessageTag::kSampledTokens);
  world_ = nullptr;
  return decode_step_outputs(bytes);
}

void StageExecutor::start_send(PendingSend send) {
  reap_sends();
  sends_.push_back(std::move(send));
}

void StageExecutor::reap_sends() {
  while (!sends_.empty() && sends_.front().size_operation.test() && sends_.front().operation.test()) sends_.pop_front();
}

PendingStepOutputs StageExecutor::launch(const parallel::StepPlan& plan) {
  const ForwardBatch batch = make_batch(plan);
  // Rows whose logits are needed: each reporting sequence's prompt-logprob rows, then its sampled (last) row.
  std::vector<int64_t> rows;
  for (size_t i = 0; i < plan.sequences.size(); ++i) {
    const parallel::SequenceStep& s = plan.sequences[i];
    const BatchSequence& b = batch.sequences[i];
    if (s.new_tokens.empty()) continue;
    if (has_prompt_rows(s)) {
      TESSERA_CHECK(s.prompt_logprob_targets.size() <= s.new_tokens.size(), "step ", plan.step_index, ": sequence ",
                    s.sequence_id, " has more prompt-logprob targets than tokens");
      const auto n = static_cast<int64_t>(s.prompt_logprob_targets.size());
      for (int64_t r = 0; r < n; ++r) rows.push_back(b.token_begin + r);
      if (s.sample && n == b.token_count) fail("step ", plan.step_index, ": sequence ", s.sequence_id,
                                               " samples from a row that also has a prompt target");
    }
    if (s.sample) rows.push_back(b.token_begin + b.token_count - 1);
  }
  if (topology_.rank() == sampling_rank(topology_)) sampler_.observe(plan);
  reap_sends();
  PendingStepOutputs pending;
  if (batch.num_tokens() == 0) return pending;
  const int sampler = sampling_rank(topology_);
  // The leader posts the receive of the results' size now, so that they can arrive while it works on later plans;
  // receives with one tag match in the order posted, which is the plans' order.
  if (topology_.rank() == 0 && sampler != 0 && !rows.empty()) {
    pending.world_ = groups_.world.get();
    pending.sampler_ = sampler;
    pending.step_ = plan.step_index;
    pending.size_ = std::make_unique<uint64_t>(0);
    pending.size_received_ = groups_.world->start_recv(parallel::host_span(pending.size_.get(), 1), sampler,
                                                       parallel::MessageTag::kStepOutputSizes);
  }
  const int64_t hidden_size = stage_.config().hidden_size;

  Tensor hidden;
  if (topology_.is_first_stage()) {
    stage_.embed(batch, hidden);
  } else {
    hidden = receive_hidden(batch.num_tokens(), hidden_size);
  }
  // The trace's interval is this stage's compute: it ends before anything is sent on, so that what the sends
  // enable elsewhere starts after it.
  const int64_t began = trace_.enabled() ? StageTrace::now_us() : 0;
  const auto trace_done = [&] {
    if (trace_.enabled()) trace_.record(plan, batch.num_tokens(), began, StageTrace::now_us());
  };
  stage_.run_layers(batch, hidden);
  if (!topology_.is_last_stage()) {
    trace_done();
    PendingSend send;
    parallel::HostSpan<float> rows_out = parallel::host_span(hidden.span<float>());
    if (transfer_ == Transfer::kSliced) {  // my share of the rows: the receiving stage all-gathers the shares
      const RowShare share = row_share(batch.num_tokens());
      rows_out = rows_out.subspan(static_cast<size_t>(share.begin * hidden_size),
                                  static_cast<size_t>((share.end - share.begin) * hidden_size));
    }
    send.operation = groups_.pipeline->start_send(rows_out, topology_.stage() + 1, parallel::MessageTag::kHiddenStates);
    send.tensor = std::move(hidden);
    start_send(std::move(send));
  }

  // The results travel from the sampling rank to the leader (they are the same rank when pp == 1).
  if (topology_.is_last_stage() && !rows.empty()) {
    stage_.logits(hidden, rows, logits_);
    if (topology_.rank() == sampler) {
      std::vector<StepOutput> outputs = sample(plan, logits_, rows);
      trace_done();
      if (sampler == 0) {
        pending.outputs_ = std::move(outputs);
      } else {
        PendingSend send;
        send.bytes = encode_step_outputs(outputs);
        send.size = std::make_unique<uint64_t>(send.bytes.size());
        send.size_operation = groups_.world->start_send(parallel::host_span(send.size.get(), 1), 0,
                                                        parallel::MessageTag::kStepOutputSizes);
        send.operation =
            groups_.world->start_send(parallel::host_span(send.bytes), 0, parallel::MessageTag::kSampledTokens);
        start_send(std::move(send));
      }
    }
    // Beyond a decode batch's rows the buffer is not kept (ModelStage::kRetainedLogitRows).
    if (static_cast<int64_t>(rows.size()) > ModelStage::kRetainedLogitRows) logits_ = Tensor();
  }
  if (topology_.is_last_stage() && (rows.empty() || topology_.rank() != sampler)) trace_done();
  return pending;
}

std::vector<StepOutput> StageExecutor::sample(const parallel::StepPlan& plan, const Tensor& logits,
                                              const std::vector<int64_t>& rows) {
  const int64_t vocab = logits.shape()[1];
  const float* all = logits.data<float>();
  std::vector<StepOutput> out;
  std::vector<int64_t> sampled_rows;  // indices into `rows` of the sampled rows, for the observer
  size_t row = 0;
  for (size_t i = 0; i < plan.sequences.size(); ++i) {
    const parallel::SequenceStep& s = plan.sequences[i];
    if (!reports_output(s)) continue;
    StepOutput o;
    o.sequence_id = s.sequence_id;
    if (has_prompt_rows(s)) {
      for (const int32_t target : s.prompt_logprob_targets) {
        o.prompt_logprobs.push_back(
            kernels::cpu::row_logprobs(all + static_cast<int64_t>(row) * vocab, vocab, target, s.sampling.prompt_logprobs));
        ++row;
      }
    }
    if (s.sample) {
      sampled_rows.push_back(static_cast<int64_t>(row));
      sampler_.sample(s, all + static_cast<int64_t>(row) * vocab, vocab, o);
      ++row;
    }
    out.push_back(std::move(o));
  }
  TESSERA_CHECK(row == rows.size(), "step ", plan.step_index, ": used ", row, " logit rows of ", rows.size());
  if (observer_) {
    if (sampled_rows.size() == rows.size()) {
      observer_(plan, logits);
    } else {
      Tensor sampled(DType::F32, {static_cast<int64_t>(sampled_rows.size()), vocab});
      for (size_t k = 0; k < sampled_rows.size(); ++k) {
        std::memcpy(sampled.data<float>() + static_cast<int64_t>(k) * vocab, all + sampled_rows[k] * vocab,
                    static_cast<size_t>(vocab) * sizeof(float));
      }
      observer_(plan, sampled);
    }
  }
  return out;
}

}  // namespace tessera::runtime
