#pragma once
// The rank layout of one model replica: world = pp stages x tp ranks, rank = stage * tp + tp_rank
// (Megatron / TensorRT-LLM order), so a tensor-parallel group is contiguous and stays inside one node.
#include <string>
#include <vector>

namespace tessera::parallel {

struct ParallelLayout {
  int tp = 1;
  int pp = 1;
  // Decoder layers per pipeline stage, first stage first (`--pp-layers 19,11`, `parallel.pp_layers`): pp counts,
  // each >= 1, summing to the model's layer count (stage_layers checks that). Empty: the balanced split.
  std::vector<int> stage_layer_counts = {};  // "= {}": {tp, pp} stays a complete initializer (-Wextra)
  std::string to_string() const;  // "tp=2 pp=3", with a partition "tp=1 pp=2 layers=19,11"
};

// "19,11": the counts as --pp-layers writes them.
std::string layer_counts_text(const std::vector<int>& counts);

// A half-open range of decoder layers [begin, end).
struct LayerRange {
  int begin = 0;
  int end = 0;
  int size() const { return end - begin; }
  bool contains(int layer) const { return layer >= begin && layer < end; }
};

class Topology {
 public:
  // Throws tessera::Error naming the problem when tp or pp is < 1, tp * pp != world_size, rank is outside the world,
  // or a layer partition does not have pp counts >= 1 (check_stage_layer_counts without a model).
  Topology(int world_size, int rank, ParallelLayout layout);

  const ParallelLayout& layout() const { return layout_; }

  int world_size() const { return world_size_; }
  int rank() const { return rank_; }
  int tp() const { return layout_.tp; }
  int pp() const { return layout_.pp; }
  int stage() const { return rank_ / layout_.tp; }
  int tp_rank() const { return rank_ % layout_.tp; }
  bool is_leader() const { return rank_ == 0; }
  bool is_first_stage() const { return stage() == 0; }
  bool is_last_stage() const { return stage() == layout_.pp - 1; }

  int rank_of(int stage, int tp_rank) const;       // throws when out of range
  std::vector<int> tp_group(int stage) const;      // world ranks of one stage's TP group, by tp_rank
  std::vector<int> pipeline_group(int tp_rank) const;  // world ranks with this tp_rank, by stage
  std::string describe() const;                    // "rank 4 (stage 1, tp_rank 1 of tp=3 pp=2)"

 private:
  int world_size_;
  int rank_;
  ParallelLayout layout_;
};

// Balanced contiguous layer ranges: the first (num_layers % pp) stages take one layer more.
// Throws when there are more stages than layers.
LayerRange stage_layers(int num_layers, int pp, int stage);
// The layout's ranges: its stage_layer_counts when set (stage s takes the counts[s] layers after those of the
// stages before it), else the balanced split above. Throws what check_stage_layer_counts throws.
LayerRange stage_layers(int num_layers, const ParallelLayout& layout, int stage);

// A layer partition must have pp counts, each >= 1, summing to the model's layers (num_layers < 0: not known yet,
// the sum is not checked). Throws tessera::Error naming --pp-layers / parallel.pp_layers, the counts, their sum
// and the model's layer count. Empty counts (the balanced split) always pass.
void check_stage_layer_counts(const std::vector<int>& counts, int pp, int num_layers = -1);

}  // namespace tessera::parallel
