#pragma once
// What `tessera inspect` reports about a model, computed from its config and the shapes and storage types its
// WeightSource describes, without reading any weight data:
//  - the weights the config implies, counted and summed per storage type ("Q4_1", "BF16", ...);
//  - for a tp x pp layout, what every rank would own and hold. The held bytes mirror load_stage_weights exactly
//    (StageWeights::bytes() of the same rank, in the same matrix format), so a user can size a layout before
//    starting any rank.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/packed_matrix.h"
#include "parallel/topology.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_parallel_shard.h"
#include "runtime/model/weight_layout.h"  // model_weight_ids
#include "runtime/model/weight_source.h"

namespace tessera::runtime {

struct StorageTypeTotal {
  std::string storage_type;  // as the file names it: "Q4_1", "F32", "BF16"
  int64_t tensors = 0;
  int64_t elements = 0;
  uint64_t stored_bytes = 0;
};

struct WeightSummary {
  std::vector<StorageTypeTotal> by_type;  // sorted by stored bytes, largest first
  int64_t tensors = 0;
  int64_t elements = 0;
  uint64_t stored_bytes = 0;
};

// Sums model_weight_ids(config) over source.info(); throws tessera::Error when the source lacks one of them.
WeightSummary summarize_weights(const ModelConfig& config, const WeightSource& source);

// One rank of a layout (rank = stage * tp + tp_rank) and what it would hold.
struct RankFootprint {
  int rank = 0;
  int stage = 0;
  int tp_rank = 0;
  parallel::LayerRange layers;
  TensorParallelShard shard;
  bool first_stage = false;  // holds the embedding rows of its vocabulary slice
  bool last_stage = false;   // holds the final norm and the LM head rows (the embedding again when tied)
  uint64_t held_bytes = 0;    // what load_stage_weights allocates for this rank (StageWeights::bytes())
  uint64_t stored_bytes = 0;  // the same slices in the file's storage types (what the rank reads from the file)
};

// The engine's own checks (check_tensor_parallel_split, stage_layers) run first: an impossible layout throws
// tessera::Error with the message a rank would print. Ranks are returned in rank order. `matrix_format` is how
// the projection matrices and the LM head are kept (load_stage_weights' matrix_format, `--weight-dtype`).
std::vector<RankFootprint> plan_rank_footprints(
    const ModelConfig& config, const WeightSource& source, parallel::ParallelLayout layout,
    kernels::cpu::WeightFormat matrix_format = kernels::cpu::WeightFormat::kF32);

// The bytes of a [rows, cols] matrix kept in `format` (PackedMatrix::bytes()); q8_0 keeps matrices whose rows are
// not whole blocks in f32, as load_stage_weights does. Not for kNative (throws: the bytes depend on the file's
// storage types; plan_rank_footprints computes them from the source).
uint64_t packed_matrix_bytes(int64_t rows, int64_t cols, kernels::cpu::WeightFormat format);
// The held bytes alone, from the config: load_stage_weights(...).bytes() for that shard, stage and format
// (not kNative, see packed_matrix_bytes).
uint64_t stage_weight_bytes(const ModelConfig& config, const TensorParallelShard& shard, parallel::LayerRange layers,
                            bool first_stage, bool last_stage,
                            kernels::cpu::WeightFormat matrix_format = kernels::cpu::WeightFormat::kF32);

}  // namespace tessera::runtime
