#pragma once
// Sizing arithmetic of `tessera plan`: for a model's shapes and a cluster's description, what each rank of a
// tp x pp layout holds (weights, KV cache, activations), how many tokens of KV cache the replica can keep, and a
// decode-time estimate per token at batch 1 from the bytes each stage reads and the collectives it runs. Pure
// arithmetic, no I/O: every formula is written out next to its code and checked by hand in tests/e2e/plan_test.py.
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model/model_config.h"
#include "runtime/model/pipeline_partition.h"

namespace tessera::launcher {

struct ClusterSpec {
  int nodes = 1;
  int gpus_per_node = 8;
  double gpu_memory_gib = 80;              // HBM per GPU
  double hbm_bandwidth_gbps = 3350;        // GB/s per GPU (H100 SXM: 3350)
  double intra_node_bandwidth_gbps = 450;  // GB/s per GPU and direction between GPUs of a node (NVLink 4: 450)
  double inter_node_bandwidth_gbps = 50;   // GB/s per GPU and direction between nodes (400 Gb/s NIC per GPU: 50)
  double collective_latency_us = 10;       // fixed cost of one collective or send
  double memory_fraction = 0.90;           // of each GPU's memory Tessera may use
  double reserve_gib = 2;                  // per GPU, out of that fraction: CUDA context, NCCL buffers, allocator
};

struct PlanSettings {
  double weight_bytes = 2;    // per element of the layers' projection matrices: bf16 2, fp8 1
  double kv_bytes = 2;        // per element of the KV cache: bf16 2, fp8 1
  int batched_tokens = 2048;  // tokens of one forward step (prefill chunk), for the activations
  int max_seqs = 256;         // sequences of one decode step, for the logits
  int context = 8192;         // tokens one sequence must fit for a layout to count as fitting
};

struct StagePlan {
  int stage = 0;
  int layers = 0;
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes_per_token = 0;  // this rank's share of one token's K and V over its layers
  uint64_t activation_bytes = 0;
  int64_t free_bytes = 0;           // usable - reserve - weights - activations: what is left for the KV cache
  double decode_seconds = 0;        // this stage's part of one decode step at batch 1 (reads + collectives)
};

struct LayoutPlan {
  int tp = 1;
  int pp = 1;
  int gpus = 1;
  int nodes = 1;                   // nodes the ranks occupy (rank r on node r / gpus_per_node)
  std::vector<int> stage_layer_counts;  // the layers of each stage when --pp-layers set them; empty: balanced
  bool valid = true;               // the shapes allow it (tp divides heads, pp <= layers, enough GPUs, the counts)
  std::string invalid_reason;
  std::vector<StagePlan> stages;   // one per stage; every tp rank of a stage holds the same
  int64_t kv_capacity_tokens = 0;  // min over stages of free / kv_bytes_per_token (0 when nothing is free)
  double decode_seconds = 0;       // sum over stages + the sends between them
  bool fits = false;               // valid, weights fit and kv_capacity_tokens >= settings.context
};

// The plan of one layout, its layers split as `layers` says (--pp-layers: balanced, counts, or auto); counts that do
// not fit the model make the plan invalid, with check_stage_layer_counts' message as the reason.
LayoutPlan plan_layout(const runtime::ModelConfig& model, const ClusterSpec& cluster, const PlanSettings& settings,
                       int tp, int pp, const runtime::PipelineLayers& layers = {});
// Every candidate: tp a power of two (or a divisor of the heads) up to gpus_per_node, pp from 1 while tp * pp
// fits the cluster; sorted best first: layouts that fit by decode time, then fewer GPUs; then the rest. `layers`
// applies to every candidate (balanced or auto: counts fit one pp only).
std::vector<LayoutPlan> plan_layouts(const runtime::ModelConfig& model, const ClusterSpec& cluster,
                                     const PlanSettings& settings, const runtime::PipelineLayers& layers = {});

}  // namespace tessera::launcher
