#include "parallel/topology.h"

#include "kernels/base/error.h"

namespace tessera::parallel {

std::string ParallelLayout::to_string() const { return concat("tp=", tp, " pp=", pp); }

Topology::Topology(int world_size, int rank, ParallelLayout layout)
    : world_size_(world_size), rank_(rank), layout_(layout) {
  TESSERA_CHECK(layout.tp >= 1, "tensor-parallel size must be >= 1, got tp=", layout.tp);
  TESSERA_CHECK(layout.pp >= 1, "pipeline-parallel size must be >= 1, got pp=", layout.pp);
  TESSERA_CHECK(static_cast<long long>(layout.tp) * layout.pp == world_size, "the layout ", layout.to_string(),
                " needs ", static_cast<long long>(layout.tp) * layout.pp, " ranks but the MPI world has ", world_size,
                " (start mpirun with -np ", static_cast<long long>(layout.tp) * layout.pp, ")");
  TESSERA_CHECK(rank >= 0 && rank < world_size, "rank ", rank, " is outside a world of ", world_size);
}

int Topology::rank_of(int stage_index, int tp_index) const {
  TESSERA_CHECK(stage_index >= 0 && stage_index < layout_.pp, "stage ", stage_index, " out of range for pp=",
                layout_.pp);
  TESSERA_CHECK(tp_index >= 0 && tp_index < layout_.tp, "tp_rank ", tp_index, " out of range for tp=", layout_.tp);
  return stage_index * layout_.tp + tp_index;
}

std::vector<int> Topology::tp_group(int stage_index) const {
  std::vector<int> ranks;
  for (int t = 0; t < layout_.tp; ++t) ranks.push_back(rank_of(stage_index, t));
  return ranks;
}

std::vector<int> Topology::pipeline_group(int tp_index) const {
  std::vector<int> ranks;
  for (int s = 0; s < layout_.pp; ++s) ranks.push_back(rank_of(s, tp_index));
  return ranks;
}

std::string Topology::describe() const {
  return concat("rank ", rank_, " (stage ", stage(), ", tp_rank ", tp_rank(), " of ", layout_.to_string(), ")");
}

LayerRange stage_layers(int num_layers, int pp, int stage) {
  TESSERA_CHECK(pp >= 1, "pipeline-parallel size must be >= 1, got pp=", pp);
  TESSERA_CHECK(num_layers >= pp, "cannot split ", num_layers, " layers over pp=", pp,
                " pipeline stages: every stage needs at least one layer");
  TESSERA_CHECK(stage >= 0 && stage < pp, "stage ", stage, " out of range for pp=", pp);
  const int base = num_layers / pp;
  const int extra = num_layers % pp;
  const int begin = stage * base + (stage < extra ? stage : extra);
  return LayerRange{begin, begin + base + (stage < extra ? 1 : 0)};
}

}  // namespace tessera::parallel
