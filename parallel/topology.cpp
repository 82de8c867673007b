#include "parallel/topology.h"

#include "kernels/base/error.h"

namespace tessera::parallel {

std::string layer_counts_text(const std::vector<int>& counts) {
  std::string out;
  for (int c : counts) {
    if (!out.empty()) out += ',';
    out += std::to_string(c);
  }
  return out;
}

std::string ParallelLayout::to_string() const {
  if (stage_layer_counts.empty()) return concat("tp=", tp, " pp=", pp);
  return concat("tp=", tp, " pp=", pp, " layers=", layer_counts_text(stage_layer_counts));
}

void check_stage_layer_counts(const std::vector<int>& counts, int pp, int num_layers) {
  if (counts.empty()) return;
  const std::string what = concat("--pp-layers ", layer_counts_text(counts));
  TESSERA_CHECK(static_cast<int>(counts.size()) == pp, what, ": ", counts.size(), " layer count",
                counts.size() == 1 ? "" : "s", " for pp=", pp, " pipeline stages (give exactly ", pp,
                ", one per stage, or auto)");
  long long sum = 0;
  for (size_t s = 0; s < counts.size(); ++s) {
    TESSERA_CHECK(counts[s] >= 1, what, ": stage ", s, " has ", counts[s],
                  " layers; every stage needs at least one layer");
    sum += counts[s];
  }
  TESSERA_CHECK(num_layers < 0 || sum == num_layers, what, ": the counts sum to ", sum, " layers but the model has ",
                num_layers, " (give ", pp, " counts >= 1 that sum to ", num_layers, ", or auto)");
}

Topology::Topology(int world_size, int rank, ParallelLayout layout)
    : world_size_(world_size), rank_(rank), layout_(layout) {
  TESSERA_CHECK(layout.tp >= 1, "tensor-parallel size must be >= 1, got tp=", layout.tp);
  TESSERA_CHECK(layout.pp >= 1, "pipeline-parallel size must be >= 1, got pp=", layout.pp);
  TESSERA_CHECK(static_cast<long long>(layout.tp) * layout.pp == world_size, "the layout ", layout.to_string(),
                " needs ", static_cast<long long>(layout.tp) * layout.pp, " ranks but the MPI world has ", world_size,
                " (start mpirun with -np ", static_cast<long long>(layout.tp) * layout.pp, ")");
  TESSERA_CHECK(rank >= 0 && rank < world_size, "rank ", rank, " is outside a world of ", world_size);
  check_stage_layer_counts(layout.stage_layer_counts, layout.pp);
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

LayerRange stage_layers(int num_layers, const ParallelLayout& layout, int stage) {
  if (layout.stage_layer_counts.empty()) return stage_layers(num_layers, layout.pp, stage);
  check_stage_layer_counts(layout.stage_layer_counts, layout.pp, num_layers);
  TESSERA_CHECK(stage >= 0 && stage < layout.pp, "stage ", stage, " out of range for pp=", layout.pp);
  int begin = 0;
  for (int s = 0; s < stage; ++s) begin += layout.stage_layer_counts[static_cast<size_t>(s)];
  return LayerRange{begin, begin + layout.stage_layer_counts[static_cast<size_t>(stage)]};
}

}  // namespace tessera::parallel
