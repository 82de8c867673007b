#pragma once
// Runs one StepPlan on this rank: the same code on every rank, each doing its stage's part.
//   first stage: embed the plan's tokens;  other stages: receive hidden states from the previous stage;
//   every stage: its layers (TP all-reduces inside);  not last: send hidden states on;
//   last stage: logits of the rows that need them, tp_rank 0 samples (TokenSampler) and reports the results to
//   the leader.
// Every rank must call execute() with the same plans in the same order (the leader broadcasts them first).
#include <cstdint>
#include <functional>
#include <vector>

#include "parallel/process_groups.h"
#include "parallel/step_plan.h"
#include "parallel/topology.h"
#include "runtime/engine/step_output.h"
#include "runtime/engine/token_sampler.h"
#include "runtime/model/model_stage.h"

namespace tessera::runtime {

class StageExecutor {
 public:
  // Called on the last stage's tp_rank 0 with the plan and the [sampling sequences, vocab] logits (the rows that
  // are sampled, in plan order; prompt-logprob rows are not included).
  using LogitsObserver = std::function<void(const parallel::StepPlan&, const Tensor&)>;

  StageExecutor(const parallel::Topology& topology, parallel::ProcessGroups& groups, ModelStage& stage);

  // On the leader: one StepOutput per plan sequence that samples or reports prompt logprobs, in plan order.
  // Empty on other ranks.
  std::vector<StepOutput> execute(const parallel::StepPlan& plan);
  void set_logits_observer(LogitsObserver observer) { observer_ = std::move(observer); }

 private:
  ForwardBatch make_batch(const parallel::StepPlan& plan) const;
  std::vector<StepOutput> sample(const parallel::StepPlan& plan, const Tensor& logits, const std::vector<int64_t>& rows);

  const parallel::Topology& topology_;
  parallel::ProcessGroups& groups_;
  ModelStage& stage_;
  TokenSampler sampler_;
  LogitsObserver observer_;
};

// The world rank that samples (last stage, tp_rank 0).
int sampling_rank(const parallel::Topology& topology);

// Whether the plan's sequence reports anything to the leader (a sampled token or prompt logprobs).
bool reports_output(const parallel::SequenceStep& step);

}  // namespace tessera::runtime
