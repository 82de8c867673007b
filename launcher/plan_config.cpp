// The cluster: and plan: sections of the config schema (what `tessera plan --config` reads), apart from the plan
// command itself so that the schema's users (every command, and tests/fuzz/fuzz_config.cpp) need not compile it.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "launcher/config_schema.h"
#include "launcher/config_sections.h"

namespace tessera::launcher {
namespace {

ConfigKey cluster_key(std::string name, ConfigValueKind kind, std::string flag, std::string help, double min,
                      std::vector<std::string> choices = {}) {
  std::optional<double> bound;
  if (kind != ConfigValueKind::kString) bound = min;
  return make_config_key(std::move(name), kind, std::move(flag), std::move(help), std::move(choices), bound);
}

}  // namespace

void declare_plan_config(ConfigSchema& s) {
  using K = ConfigValueKind;
  s.section("cluster", "the hardware, for `tessera plan --config` (sizing)");
  s.key("cluster", cluster_key("nodes", K::kInt, "--nodes", "number of nodes", 1));
  s.key("cluster", cluster_key("gpus_per_node", K::kInt, "--gpus-per-node", "GPUs per node", 1));
  s.key("cluster", cluster_key("gpu_memory_gib", K::kFloat, "--gpu-memory-gib", "memory per GPU in GiB", 1));
  s.key("cluster", cluster_key("hbm_bandwidth_gbps", K::kFloat, "--hbm-bandwidth", "GPU memory bandwidth, GB/s", 1));
  ConfigKey intra = cluster_key("intra_node_bandwidth_gbps", K::kFloat, "--intra-node-bandwidth",
                                "GPU-to-GPU bandwidth inside a node per direction, GB/s (NVLink)", 0);
  ConfigKey inter = cluster_key("inter_node_bandwidth_gbps", K::kFloat, "--inter-node-bandwidth",
                                "network bandwidth per GPU between nodes, GB/s (400 Gb/s = 50)", 0);
  intra.min_exclusive = inter.min_exclusive = true;
  s.key("cluster", intra);
  s.key("cluster", inter);
  s.section("plan", "what `tessera plan --config` sizes for");
  s.key("plan", cluster_key("weight_dtype", K::kString, "--dtype", "bytes per weight element to size with", 0,
                               {"bf16", "fp16", "fp8", "int8", "int4", "fp32"}));
  s.key("plan", cluster_key("kv_dtype", K::kString, "--kv-dtype", "KV cache element type to size with", 0,
                               {"bf16", "fp16", "fp8", "int8", "fp32"}));
  s.key("plan", cluster_key("context", K::kInt, "--context", "tokens one sequence must fit", 1));
}

}  // namespace tessera::launcher
