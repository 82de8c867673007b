// `tessera plan MODEL [cluster flags | --config FILE] [--json]`: sizes a model on a cluster before anything is
// started. For every candidate (tp, pp) it prints what each rank holds (weights, activations, and the KV cache the
// rest of its memory allows), the replica's KV capacity in tokens and a decode-time estimate per token, then
// recommends the layouts that fit, best first. The arithmetic is launcher/layout_plan.cpp; this file reads the
// model (a GGUF file, a Hugging Face directory or config.json, or a preset name) and the cluster, and prints.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/error.h"
#include "launcher/commands/commands.h"
#include "launcher/config_sections.h"
#include "launcher/layout_plan.h"
#include "runtime/model/hf_config.h"
#include "runtime/model/model_presets.h"
#include "runtime/model/model_source.h"

namespace tessera::launcher {
namespace {

using nlohmann::json;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

struct PlanOptions {
  std::string model;
  std::string config_file;
  ClusterSpec cluster;
  PlanSettings settings;
  std::string weight_dtype = "bf16";
  std::string kv_dtype = "bf16";
  int tp = 0;  // 0: every candidate
  int pp = 0;
  std::string pp_layers;  // --pp-layers: counts (with --tp/--pp) or auto (every candidate)
  int top = 3;
  bool json = false;
};

double dtype_bytes(const std::string& name, const char* flag) {
  if (name == "bf16" || name == "fp16") return 2;
  if (name == "fp8" || name == "int8") return 1;
  if (name == "fp32") return 4;
  if (name == "int4") return 0.5;
  fail(flag, " must be one of bf16, fp16, fp8, int8, int4, fp32; got '", name, "'");
}

// A preset name ("llama3-70b", or "dummy:llama3-70b"), a config.json file, a Hugging Face directory, a GGUF file.
runtime::ModelConfig load_model_config(const std::string& model) {
  std::string preset = model.rfind("dummy:", 0) == 0 ? model.substr(6) : model;
  if (auto config = runtime::model_preset(preset)) return *config;
  const std::filesystem::path path(model);
  if (std::filesystem::is_regular_file(path) && path.filename() == "config.json") {
    std::ifstream in(path);
    json parsed;
    try {
      parsed = json::parse(in);
    } catch (const json::exception& e) {
      fail(model, " is not valid JSON: ", e.what());
    }
    runtime::ModelConfig config = runtime::model_config_from_hf_json(parsed, nullptr, model);
    config.name = path.parent_path().filename().string();
    return config;
  }
  if (!std::filesystem::exists(path)) {
    std::string names;
    for (const auto& n : runtime::model_preset_names()) names += (names.empty() ? "" : ", ") + n;
    fail("model '", model, "' is neither a file, a directory nor a preset (presets: ", names, ")");
  }
  return runtime::open_model_source(path).config;
}

void apply_config(const CLI::App& cmd, PlanOptions& o) {
  if (o.config_file.empty()) return;
  const ConfigFile config = ConfigFile::load(o.config_file, config_schema());
  auto take = [&](const char* key, const char* flag, auto& field) {
    if (cmd.count(flag) > 0) return;
    using T = std::decay_t<decltype(field)>;
    if (auto v = config.get<T>(key)) field = *v;
  };
  take("model", "--model", o.model);
  take("parallel.tp", "--tp", o.tp);
  take("parallel.pp", "--pp", o.pp);
  if (cmd.count("--pp-layers") == 0) {
    if (auto v = config.text("parallel.pp_layers")) o.pp_layers = *v;
  }
  take("cluster.nodes", "--nodes", o.cluster.nodes);
  take("cluster.gpus_per_node", "--gpus-per-node", o.cluster.gpus_per_node);
  take("cluster.gpu_memory_gib", "--gpu-memory-gib", o.cluster.gpu_memory_gib);
  take("cluster.hbm_bandwidth_gbps", "--hbm-bandwidth", o.cluster.hbm_bandwidth_gbps);
  take("cluster.intra_node_bandwidth_gbps", "--intra-node-bandwidth", o.cluster.intra_node_bandwidth_gbps);
  take("cluster.inter_node_bandwidth_gbps", "--inter-node-bandwidth", o.cluster.inter_node_bandwidth_gbps);
  take("plan.weight_dtype", "--dtype", o.weight_dtype);
  take("plan.kv_dtype", "--kv-dtype", o.kv_dtype);
  take("plan.context", "--context", o.settings.context);
}

json stage_json(const StagePlan& s) {
  return {{"stage", s.stage}, {"layers", s.layers}, {"weight_bytes", s.weight_bytes},
          {"kv_bytes_per_token", s.kv_bytes_per_token}, {"activation_bytes", s.activation_bytes},
          {"kv_cache_bytes", s.free_bytes > 0 ? s.free_bytes : 0}, {"decode_seconds", s.decode_seconds}};
}

json plan_json(const LayoutPlan& p) {
  json stages = json::array();
  for (const auto& s : p.stages) stages.push_back(stage_json(s));
  json out = {{"tp", p.tp}, {"pp", p.pp}, {"gpus", p.gpus}, {"nodes", p.nodes}, {"valid", p.valid},
              {"fits", p.fits}};
  if (!p.stage_layer_counts.empty()) out["pp_layers"] = p.stage_layer_counts;
  if (!p.valid) {
    out["invalid_reason"] = p.invalid_reason;
    return out;
  }
  out["stages"] = stages;
  out["kv_capacity_tokens"] = p.kv_capacity_tokens;
  out["decode_ms_per_token"] = p.decode_seconds * 1e3;
  return out;
}

// The stage with the least room left: what limits the layout.
const StagePlan& tightest(const LayoutPlan& p) {
  const StagePlan* worst = &p.stages.front();
  for (const auto& s : p.stages) {
    if (s.free_bytes < worst->free_bytes) worst = &s;
  }
  return *worst;
}

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", bytes / kGiB);
  return buf;
}

int run_plan(const CLI::App& cmd, PlanOptions& o) {
  apply_config(cmd, o);
  TESSERA_CHECK(!o.model.empty(), "no model: pass --model (a GGUF file, a Hugging Face directory or config.json, or "
                "a preset such as llama3-70b) or a --config that names one");
  TESSERA_CHECK(o.cluster.nodes >= 1, "--nodes must be >= 1, got ", o.cluster.nodes);
  TESSERA_CHECK(o.cluster.gpus_per_node >= 1, "--gpus-per-node must be >= 1, got ", o.cluster.gpus_per_node);
  TESSERA_CHECK(o.cluster.gpu_memory_gib > 0, "--gpu-memory-gib must be > 0");
  TESSERA_CHECK(o.cluster.hbm_bandwidth_gbps > 0 && o.cluster.intra_node_bandwidth_gbps > 0 &&
                    o.cluster.inter_node_bandwidth_gbps > 0,
                "bandwidths must be > 0");
  TESSERA_CHECK(o.cluster.memory_fraction > 0 && o.cluster.memory_fraction <= 1, "--memory-fraction must be in (0, 1]");
  TESSERA_CHECK(o.settings.context >= 1, "--context must be >= 1");
  TESSERA_CHECK((o.tp == 0) == (o.pp == 0), "--tp and --pp go together (or neither: every candidate)");
  runtime::PipelineLayers partition;
  if (!o.pp_layers.empty()) {
    std::string word;
    std::istringstream(o.pp_layers) >> word;
    TESSERA_CHECK(o.pp > 0 || word == "auto", "--pp-layers ", o.pp_layers,
                  " needs --tp and --pp: counts split one layout's layers (auto balances every candidate)");
    partition = runtime::parse_pipeline_layers(o.pp_layers, o.pp > 0 ? o.pp : 1);
  }
  o.settings.weight_bytes = dtype_bytes(o.weight_dtype, "--dtype");
  o.settings.kv_bytes = dtype_bytes(o.kv_dtype, "--kv-dtype");
  const runtime::ModelConfig model = load_model_config(expand_home(o.model));

  std::vector<LayoutPlan> plans;
  if (o.tp > 0) plans.push_back(plan_layout(model, o.cluster, o.settings, o.tp, o.pp, partition));
  else plans = plan_layouts(model, o.cluster, o.settings, partition);
  std::vector<const LayoutPlan*> fitting;
  for (const auto& p : plans) {
    if (p.fits && static_cast<int>(fitting.size()) < o.top) fitting.push_back(&p);
  }

  const ClusterSpec& c = o.cluster;
  if (o.json) {
    json all = json::array();
    for (const auto& p : plans) all.push_back(plan_json(p));
    json rec = json::array();
    for (const auto* p : fitting) {
      rec.push_back({{"tp", p->tp}, {"pp", p->pp}});
      if (!p->stage_layer_counts.empty()) rec.back()["pp_layers"] = p->stage_layer_counts;
    }
    const json out = {
        {"model", {{"name", model.name}, {"architecture", model.architecture}, {"num_layers", model.num_layers},
                   {"hidden_size", model.hidden_size}, {"num_heads", model.num_heads},
                   {"num_kv_heads", model.num_kv_heads}, {"head_dim", model.head_dim},
                   {"intermediate_size", model.intermediate_size}, {"vocab_size", model.vocab_size},
                   {"parameter_count", model.parameter_count()}}},
        {"cluster", {{"nodes", c.nodes}, {"gpus_per_node", c.gpus_per_node}, {"gpu_memory_gib", c.gpu_memory_gib},
                     {"hbm_bandwidth_gbps", c.hbm_bandwidth_gbps},
                     {"intra_node_bandwidth_gbps", c.intra_node_bandwidth_gbps},
                     {"inter_node_bandwidth_gbps", c.inter_node_bandwidth_gbps},
                     {"collective_latency_us", c.collective_latency_us}, {"memory_fraction", c.memory_fraction},
                     {"reserve_gib", c.reserve_gib}}},
        {"settings", {{"weight_dtype", o.weight_dtype}, {"kv_dtype", o.kv_dtype}, {"context", o.settings.context},
                      {"batched_tokens", o.settings.batched_tokens}, {"max_seqs", o.settings.max_seqs}}},
        {"layouts", all},
        {"recommended", rec}};
    std::printf("%s\n", out.dump(2).c_str());
    return fitting.empty() ? 3 : 0;
  }
  std::printf("model: %s (%s, %d layers, hidden %d, %d heads / %d KV heads, FFN %d, vocab %d, %.1fB parameters)\n",
              model.name.c_str(), model.architecture.c_str(), model.num_layers, model.hidden_size, model.num_heads,
              model.num_kv_heads, model.intermediate_size, model.vocab_size,
              static_cast<double>(model.parameter_count()) / 1e9);
  std::printf("weights %s, KV cache %s; fits = holds one sequence of %d tokens\n", o.weight_dtype.c_str(),
              o.kv_dtype.c_str(), o.settings.context);
  std::printf("cluster: %d node(s) x %d GPU(s) of %.0f GiB (%.0f%% usable, %.1f GiB reserved), HBM %.0f GB/s, "
              "intra-node %.0f GB/s, inter-node %.0f GB/s, %.0f us per collective\n\n",
              c.nodes, c.gpus_per_node, c.gpu_memory_gib, c.memory_fraction * 100, c.reserve_gib,
              c.hbm_bandwidth_gbps, c.intra_node_bandwidth_gbps, c.inter_node_bandwidth_gbps,
              c.collective_latency_us);
  std::printf("per rank, GiB, on the stage with the least room:\n");
  std::printf("%4s %4s %5s %5s  %9s %11s %9s %12s  %12s %10s  %s\n", "tp", "pp", "gpus", "nodes", "weights",
              "activations", "KV cache", "KV/token kB", "KV tokens", "decode ms", "fits");
  for (const auto& p : plans) {
    if (!p.valid) {
      std::printf("%4d %4d %5d %5d  invalid: %s\n", p.tp, p.pp, p.gpus, p.nodes, p.invalid_reason.c_str());
      continue;
    }
    const StagePlan& s = tightest(p);
    std::printf("%4d %4d %5d %5d  %9s %11s %9s %12.1f  %12lld %10.2f  %s\n", p.tp, p.pp, p.gpus, p.nodes,
                gib(static_cast<double>(s.weight_bytes)).c_str(), gib(static_cast<double>(s.activation_bytes)).c_str(),
                gib(s.free_bytes > 0 ? static_cast<double>(s.free_bytes) : 0).c_str(),
                static_cast<double>(s.kv_bytes_per_token) / 1e3, static_cast<long long>(p.kv_capacity_tokens),
                p.decode_seconds * 1e3, p.fits ? "yes" : "no");
  }
  if (fitting.empty()) {
    std::printf("\nno layout fits: add GPUs, use a smaller --dtype (fp8) or a shorter --context\n");
    return 3;
  }
  std::printf("\nrecommended (fastest decode first):\n");
  for (const auto* p : fitting) {
    const parallel::ParallelLayout layout{p->tp, p->pp, p->stage_layer_counts};
    std::printf("  %s on %d GPU(s) (%d node(s)): %.2f ms/token at batch 1, %lld tokens of KV cache\n",
                layout.to_string().c_str(), p->gpus, p->nodes, p->decode_seconds * 1e3,
                static_cast<long long>(p->kv_capacity_tokens));
  }
  return 0;
}

}  // namespace

void add_plan_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("plan", "Size a model on a cluster: per-rank memory, KV capacity and decode time "
                                         "for every (tp, pp), the layouts that fit first");
  auto o = std::make_shared<PlanOptions>();
  cmd->add_option("model,--model", o->model,
                  "A GGUF file, a Hugging Face directory or config.json, or a preset (llama3-8b, llama3-70b, ...)");
  cmd->add_option("--config", o->config_file, "YAML config: its model, parallel: layout and cluster: section");
  cmd->add_option("--nodes", o->cluster.nodes, "Nodes")->capture_default_str();
  cmd->add_option("--gpus-per-node", o->cluster.gpus_per_node, "GPUs per node")->capture_default_str();
  cmd->add_option("--gpu-memory-gib", o->cluster.gpu_memory_gib, "Memory per GPU, GiB")->capture_default_str();
  cmd->add_option("--hbm-bandwidth", o->cluster.hbm_bandwidth_gbps, "GPU memory bandwidth, GB/s")
      ->capture_default_str();
  cmd->add_option("--intra-node-bandwidth", o->cluster.intra_node_bandwidth_gbps,
                  "GPU-to-GPU bandwidth in a node per direction, GB/s")->capture_default_str();
  cmd->add_option("--inter-node-bandwidth", o->cluster.inter_node_bandwidth_gbps,
                  "Network bandwidth per GPU between nodes, GB/s")->capture_default_str();
  cmd->add_option("--latency-us", o->cluster.collective_latency_us, "Fixed cost of one collective or send, us")
      ->capture_default_str();
  cmd->add_option("--memory-fraction", o->cluster.memory_fraction, "Fraction of GPU memory Tessera may use")
      ->capture_default_str();
  cmd->add_option("--reserve-gib", o->cluster.reserve_gib, "Per GPU, out of that: CUDA context, NCCL, allocator")
      ->capture_default_str();
  cmd->add_option("--dtype", o->weight_dtype, "Weights of the layers' matrices: bf16, fp16, fp8, int8, int4, fp32")
      ->capture_default_str();
  cmd->add_option("--kv-dtype", o->kv_dtype, "KV cache: bf16, fp16, fp8, int8, fp32")->capture_default_str();
  cmd->add_option("--context", o->settings.context, "Tokens one sequence must fit")->capture_default_str();
  cmd->add_option("--batched-tokens", o->settings.batched_tokens, "Tokens of one forward step (activations)")
      ->capture_default_str();
  cmd->add_option("--max-seqs", o->settings.max_seqs, "Sequences of one decode step (logits)")->capture_default_str();
  cmd->add_option("--tp", o->tp, "Plan only this tensor-parallel size (with --pp)");
  cmd->add_option("--pp", o->pp, "Plan only this pipeline-parallel size (with --tp)");
  cmd->add_option("--pp-layers", o->pp_layers,
                  "Layers per pipeline stage, first stage first: counts summing to the model's layers (with --tp and "
                  "--pp), or auto for every candidate: balance the stages' decode cost, the LM head counted on the "
                  "last stage (default: equal counts)");
  cmd->add_option("--top", o->top, "How many fitting layouts to recommend")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&action, cmd, o] { action = [cmd, o] { return run_plan(*cmd, *o); }; });
}

}  // namespace tessera::launcher
