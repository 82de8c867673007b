#pragma once
// Runs one StepPlan on this rank: the same code on every rank, each doing its stage's part.
//   first stage: embed the plan's tokens;  other stages: receive hidden states from the previous stage;
//   every stage: its layers (TP all-reduces inside);  not last: send hidden states on;
//   last stage: logits of the sampling rows, tp_rank 0 samples and sends the ids to the leader.
// Every rank must call execute() with the same plan (the leader broadcasts it first).
#include <cstdint>
#include <functional>
#include <vector>

#include "parallel/process_groups.h"
#include "parallel/step_plan.h"
#include "parallel/topology.h"
#include "runtime/model/model_stage.h"

namespace tessera::runtime {

struct SampledToken {
  uint64_t sequence_id = 0;
  int32_t token = 0;
};

class StageExecutor {
 public:
  // Called on the last stage's tp_rank 0 with the plan and the [sampling sequences, vocab] logits.
  using LogitsObserver = std::function<void(const parallel::StepPlan&, const Tensor&)>;

  StageExecutor(const parallel::Topology& topology, parallel::ProcessGroups& groups, ModelStage& stage);

  // Returns the sampled tokens, in plan order of the sampling sequences, on the leader; empty on other ranks.
  std::vector<SampledToken> execute(const parallel::StepPlan& plan);
  void set_logits_observer(LogitsObserver observer) { observer_ = std::move(observer); }

 private:
  ForwardBatch make_batch(const parallel::StepPlan& plan) const;
  std::vector<SampledToken> sample(const parallel::StepPlan& plan, const Tensor& logits) const;

  const parallel::Topology& topology_;
  parallel::ProcessGroups& groups_;
  ModelStage& stage_;
  LogitsObserver observer_;
};

// The world rank that samples (last stage, tp_rank 0).
int sampling_rank(const parallel::Topology& topology);

}  // namespace tessera::runtime
