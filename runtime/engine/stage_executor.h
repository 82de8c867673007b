#pragma once
// Runs one StepPlan on this rank: the same code on every rank, each doing its stage's part.
//   first stage: embed the plan's tokens;  other stages: receive hidden states from the previous stage;
//   every stage: its layers (TP all-reduces inside);  not last: send hidden states on;
//   last stage: logits of the rows that need them, tp_rank 0 samples (TokenSampler) and reports the results to
//   the leader.
// Every rank must launch the same plans in the same order (the leader broadcasts them first).
//
// Nothing a stage sends waits for its receiver: the hidden states and the sampled results leave through
// non-blocking sends whose buffers the executor keeps until they complete, so a stage goes on to its next
// micro-batch while the next stage still works on this one. The leader gets a PendingStepOutputs back and waits
// for the results only when it needs them. A stage that needs its input (hidden states) blocks for it.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "parallel/pending_operation.h"
#include "parallel/process_groups.h"
#include "parallel/step_plan.h"
#include "parallel/topology.h"
#include "runtime/engine/stage_trace.h"
#include "runtime/engine/step_output.h"
#include "runtime/engine/token_sampler.h"
#include "runtime/model/model_stage.h"

namespace tessera::runtime {

// The leader's handle on one launched plan's results: ready at once when the leader samples itself (pp == 1),
// otherwise on their way from the sampling rank (a receive of their size is posted at launch).
class PendingStepOutputs {
 public:
  PendingStepOutputs() = default;
  PendingStepOutputs(PendingStepOutputs&&) noexcept = default;
  PendingStepOutputs& operator=(PendingStepOutputs&&) noexcept = default;

  // Non-blocking: whether wait() would return without waiting for the sampling rank.
  bool ready();
  // The plan's outputs (one per reporting sequence, in plan order). Once.
  std::vector<StepOutput> wait();

 private:
  friend class StageExecutor;
  std::vector<StepOutput> outputs_;
  parallel::HostCommunicator* world_ = nullptr;  // set when the outputs come from another rank
  int sampler_ = 0;
  uint64_t step_ = 0;
  std::unique_ptr<uint64_t> size_;           // the pending receive's buffer: a stable address
  parallel::PendingOperation size_received_;
};

class StageExecutor {
 public:
  // Called on the last stage's tp_rank 0 with the plan and the [sampling sequences, vocab] logits (the rows that
  // are sampled, in plan order; prompt-logprob rows are not included).
  using LogitsObserver = std::function<void(const parallel::StepPlan&, const Tensor&)>;

  // How hidden states travel between stages. kFull: each TP rank sends the whole [rows, hidden] tensor to its peer
  // of the next stage. kSliced: each sends only its 1/tp share of the rows and the receiving stage all-gathers them
  // within its TP group, so the bytes between stages fall by tp (worth it when a network separates the stages; on
  // one host the all-gather costs more than it saves).
  enum class Transfer { kFull, kSliced };

  StageExecutor(const parallel::Topology& topology, parallel::ProcessGroups& groups, ModelStage& stage,
                Transfer transfer = Transfer::kFull);

  // Runs this rank's part of `plan` and returns once its own work is done and its sends are started. On the
  // leader, the handle yields one StepOutput per plan sequence that samples or reports prompt logprobs, in plan
  // order; elsewhere it is empty.
  PendingStepOutputs launch(const parallel::StepPlan& plan);
  // launch() and wait for the results.
  std::vector<StepOutput> execute(const parallel::StepPlan& plan) { return launch(plan).wait(); }
  void set_logits_observer(LogitsObserver observer) { observer_ = std::move(observer); }

 private:
  // A send in progress and the bytes it reads.
  struct PendingSend {
    Tensor tensor;                  // hidden states
    std::vector<std::byte> bytes;   // encoded outputs
    std::unique_ptr<uint64_t> size; // their size
    parallel::PendingOperation operation, size_operation;
  };
  void start_send(PendingSend send);
  void reap_sends();

  ForwardBatch make_batch(const parallel::StepPlan& plan) const;
  // This rank's share of `rows` rows under kSliced: [begin, end), every share padded to `per` rows.
  struct RowShare {
    int64_t per = 0, begin = 0, end = 0;
  };
  RowShare row_share(int64_t rows) const;
  Tensor receive_hidden(int64_t rows, int64_t hidden_size);
  std::vector<StepOutput> sample(const parallel::StepPlan& plan, const Tensor& logits, const std::vector<int64_t>& rows);

  const parallel::Topology& topology_;
  parallel::ProcessGroups& groups_;
  ModelStage& stage_;
  Transfer transfer_;
  TokenSampler sampler_;
  LogitsObserver observer_;
  StageTrace trace_;
  std::deque<PendingSend> sends_;  // oldest first
  Tensor logits_;                  // the last stage's, one allocation reused by steps (ModelStage::kRetainedLogitRows)
};

// The world rank that samples (last stage, tp_rank 0).
int sampling_rank(const parallel::Topology& topology);

// Whether the plan's sequence reports anything to the leader (a sampled token or prompt logprobs).
bool reports_output(const parallel::SequenceStep& step);

}  // namespace tessera::runtime
