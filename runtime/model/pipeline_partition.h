#pragma once
// How a model's decoder layers are split over the pipeline stages (`--pp-layers`, `parallel.pp_layers`):
//  - balanced (the default, no flag): equal counts, parallel::stage_layers;
//  - explicit counts, "19,11": pp numbers >= 1 summing to the model's layers (vLLM's VLLM_PP_LAYER_PARTITION);
//  - auto: the contiguous split whose most expensive stage is cheapest, counting the LM head on the last stage.
// The cost model of auto is what one rank reads per decode step, in weights: a layer costs its q, k, v, o, gate,
// up and down rows of this rank's tensor-parallel shard; the LM head costs its vocabulary rows x hidden; the
// embedding lookup (a few rows) and the norms count as free. Decode is memory-bound, so weights read is time.
// SmolLM2-135M: a layer is 3.54M weights, its tied 49152 x 576 head 28.3M, eight layers' worth: at pp=2 auto puts
// 19 layers on stage 0 and 11 plus the head on stage 1 (19 layers' worth each) where the balanced split has 15 and
// 15 + 8.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "parallel/topology.h"
#include "runtime/model/model_config.h"

namespace tessera::runtime {

// What --pp-layers asks for, parsed but not yet applied to a model.
struct PipelineLayers {
  enum class Mode { kBalanced, kCounts, kAuto };
  Mode mode = Mode::kBalanced;
  std::vector<int> counts;  // kCounts: layers per stage, first stage first
};

// "" -> kBalanced (no flag), "auto" -> kAuto, "19,11" (spaces allowed around the numbers) -> kCounts, which must be
// pp counts >= 1 (parallel::check_stage_layer_counts). Throws tessera::Error naming --pp-layers and the value.
PipelineLayers parse_pipeline_layers(const std::string& text, int pp);

// The decode cost of one layer and of the LM head on one rank of a tp-way split (tp rank 0's shard: the largest
// vocabulary slice). Throws what check_tensor_parallel_split throws for an impossible tp.
int64_t layer_decode_cost(const ModelConfig& config, int tp);
int64_t lm_head_decode_cost(const ModelConfig& config, int tp);
// Every stage's decode cost under `layout` (its stage_layer_counts, or balanced): its layers, plus the LM head on
// the last stage.
std::vector<int64_t> stage_decode_costs(const ModelConfig& config, const parallel::ParallelLayout& layout);

// The contiguous split of config.num_layers over pp stages that minimizes the largest stage_decode_costs. Among
// equally good splits: the smallest sum of squared stage costs (the most even), then more layers on earlier stages
// (the last stage also samples, which the model does not count). Throws for more stages than layers.
std::vector<int> balance_pipeline_layers(const ModelConfig& config, int tp, int pp);

// The layout to run: {tp, pp} and the partition `layers` asks for on this model: none for kBalanced, the counts
// (checked against config.num_layers: parallel::check_stage_layer_counts) for kCounts, balance_pipeline_layers for
// kAuto.
parallel::ParallelLayout resolve_pipeline_layout(const ModelConfig& config, int tp, int pp,
                                                 const PipelineLayers& layers);
// The same for a command's flags: parses `pp_layers` and, only when it is given, reads the model's config (not its
// weights: open_model_source maps the file and reads its metadata) to resolve it. What generate, serve and bench
// call, on every rank, before the replica loads anything.
parallel::ParallelLayout resolve_pipeline_layout(const std::filesystem::path& model, int tp, int pp,
                                                 const std::string& pp_layers);

}  // namespace tessera::runtime
