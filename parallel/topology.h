#pragma once
// The rank layout of one model replica: world = pp stages x tp ranks, rank = stage * tp + tp_rank
// (Megatron / TensorRT-LLM order), so a tensor-parallel group is contiguous and stays inside one node.
#include <string>
#include <vector>

namespace tessera::parallel {

struct ParallelLayout {
  int tp = 1;
  int pp = 1;
  std::string to_string() const;  // "tp=2 pp=3"
};

// A half-open range of decoder layers [begin, end).
struct LayerRange {
  int begin = 0;
  int end = 0;
  int size() const { return end - begin; }
  bool contains(int layer) const { return layer >= begin && layer < end; }
};

class Topology {
 public:
  // Throws tessera::Error naming the problem when tp or pp is < 1, tp * pp != world_size or rank is outside the world.
  Topology(int world_size, int rank, ParallelLayout layout);

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

}  // namespace tessera::parallel
