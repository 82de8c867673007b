// `tessera bench`: throughput of a replica under mpirun, on a model file or dummy weights (dummy:<preset>). For each
// batch size B it submits B requests of random prompt ids at once to the scheduler (continuous batching, EOS ignored)
// and reports prefill and decode tokens/s, the decode step latency, and the bandwidth that latency implies for the
// bytes a decode step must read (weights + KV cache, from the shapes): decode is memory-bound, so that number
// against the memory's copy bandwidth says how close to the roofline the backend runs. (The CPU kernels read each
// weight from memory once per step at any batch size; at large batches a step is compute-bound and the column then
// says how far below the memory roofline it runs, not that memory limits it.) On the CPU backend the third line
// names the kernels' instruction set (cpuid, or TESSERA_CPU_ISA) and activation format (TESSERA_CPU_ACTIVATIONS).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/packed_matrix.h"
#include "launcher/backends/backends.h"
#include "launcher/commands/commands.h"
#include "launcher/config_overrides.h"
#include "launcher/cpu_threads.h"
#include "launcher/replica_roles.h"
#include "parallel/collective_failure.h"
#include "parallel/mpi/mpi_communicator.h"
#include "parallel/mpi/mpi_session.h"
#include "runtime/core/tensor.h"
#include "runtime/engine/replica.h"
#include "runtime/model/forward_batch.h"
#include "runtime/model/model_source.h"
#include "runtime/model/model_summary.h"
#include "runtime/model/pipeline_partition.h"
#include "runtime/model/tensor_parallel_shard.h"

namespace tessera::launcher {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string model;
  std::string backend = "cpu";
  int tp = 1;
  int pp = 1;
  std::string pp_layers;  // --pp-layers: "", "auto" or "19,11"
  std::string batches = "1,8";
  int prompt_len = 128;
  int gen_len = 32;
  int max_step_tokens = 2048;
  int micro_batches = 0;  // 0: pp
  std::string pp_transfer = "auto";
  std::string cpu_activations;  // --cpu-activations; empty: TESSERA_CPU_ACTIVATIONS, else f32
  std::string weight_dtype = "native";
  std::string kv_cache_dtype = "f32";  // --kv-cache-dtype
  double gpu_memory_fraction = 0.9;
  bool no_cuda_graphs = false;
  bool no_warmup = false;
  unsigned long long seed = 1;
  std::string json_path;
  bool stage_times = false;
  bool measure_bandwidth = false;
  double bandwidth_gib = 1.0;
};

struct BenchResult {
  int batch = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  double prefill_tokens_per_s = 0, decode_tokens_per_s = 0, step_ms = 0;
  double bytes_per_step = 0, achieved_gb_per_s = 0;
};

std::vector<int> parse_batches(const std::string& text) {
  std::vector<int> out;
  size_t i = 0;
  while (i <= text.size()) {
    const size_t comma = std::min(text.find(',', i), text.size());
    const std::string item = text.substr(i, comma - i);
    char* end = nullptr;
    const long value = std::strtol(item.c_str(), &end, 10);
    TESSERA_CHECK(!item.empty() && end != nullptr && *end == '\0' && value >= 1 && value <= 4096,
                  "--batch: '", item, "' is not a batch size in [1, 4096] (expected a list such as 1,8,64)");
    out.push_back(static_cast<int>(value));
    i = comma + 1;
  }
  return out;
}

// Bytes one decode step of `batch` sequences reads, over all ranks: every projection matrix and the LM head once,
// the embedding rows of the batch, and the K and V of every sequence's context (taken at the middle of the decode
// phase). With tp above the KV-head count the replicated KV heads are read once per replica of them. The element
// sizes are the backend's: CPU f32 activations, KV in --kv-cache-dtype and weights in --weight-dtype; CUDA bf16
// everywhere.
double decode_step_bytes(const runtime::ModelConfig& c, int tp, const BenchOptions& o, int batch) {
  const double hidden = c.hidden_size, q = double{1} * c.num_heads * c.head_dim;
  double weight_bytes = 2, kv_bytes = 2;
  if (o.backend == "cpu") {
    namespace k = kernels::cpu;
    kv_bytes = static_cast<double>(k::kv_dtype_bytes(k::parse_kv_dtype(o.kv_cache_dtype)));
    const auto format = k::parse_weight_format(o.weight_dtype);
    weight_bytes = format == k::WeightFormat::kF32 ? 4 : format == k::WeightFormat::kBF16 ? 2 : 1.125;
    if (format == k::WeightFormat::kNative) {
      // The file's own blocks (f32 where a matrix cannot keep them): the held bytes of a one-rank plan, less its
      // f32 vectors and embedding, over the matrices' weights.
      const runtime::ModelSource source = runtime::open_model_source(o.model);
      const auto held = [&](k::WeightFormat f) {
        return static_cast<double>(runtime::plan_rank_footprints(c, *source.weights, {1, 1}, f).at(0).held_bytes);
      };
      const double kv_all = double{1} * c.num_kv_heads * c.head_dim;
      const double elements = (hidden * (q + 2 * kv_all) + q * hidden + 3 * hidden * c.intermediate_size) *
                                  c.num_layers + double{1} * c.vocab_size * hidden;
      weight_bytes = (held(k::WeightFormat::kNative) - (held(k::WeightFormat::kF32) - 4 * elements)) / elements;
    }
  }
  const double kv_heads_read = double{1} * runtime::make_tensor_parallel_shard(c, tp, 0).local_kv_heads() * tp;
  const double kv = kv_heads_read * c.head_dim;
  const double per_layer = hidden * (q + 2 * kv) + q * hidden + 3 * hidden * c.intermediate_size;
  const double matrices = (per_layer * c.num_layers + double{1} * c.vocab_size * hidden) * weight_bytes;
  const double norms = (2.0 * c.num_layers + 1) * hidden * 4;
  const double embedding_rows = batch * hidden * weight_bytes;
  const double context = o.prompt_len + o.gen_len / 2.0;
  const double kv_cache = batch * context * c.num_layers * 2 * kv * kv_bytes;
  return matrices + norms + embedding_rows + kv_cache;
}

// --stage-times: one stage's own compute for a decode step of `batch` sequences at `position` (the first stage's
// embedding, its layers, the last stage's LM head), what --pp-layers balances. Every rank runs its own stage at once,
// without the pipeline's transfers; the median of five after a warm-up. Before the engine starts: the step writes
// K and V into KV blocks that no sequence holds yet (each sequence writes every position before it reads it).
struct StageTime {
  double embed_ms = 0, layers_ms = 0, head_ms = 0;
  double total_ms() const { return embed_ms + layers_ms + head_ms; }
};

StageTime time_own_stage(runtime::Replica& replica, int batch, int position, int block_size) {
  const parallel::Topology& topo = replica.topology();
  const runtime::ModelConfig& c = replica.config();
  const int blocks = position / block_size + 1;
  runtime::ForwardBatch step;
  for (int b = 0; b < batch; ++b) {
    runtime::BatchSequence s;
    s.token_begin = b;
    s.token_count = 1;
    s.start_position = position;
    for (int k = 0; k < blocks; ++k) s.block_table.push_back(b * blocks + k);
    step.tokens.push_back(b % c.vocab_size);
    step.positions.push_back(position);
    step.sequences.push_back(std::move(s));
  }
  const std::vector<int64_t> rows = step.sampled_rows();
  const auto ms = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count() * 1e3;
  };
  std::vector<double> embed, layers, head;
  for (int rep = 0; rep <= 5; ++rep) {
    Tensor hidden;
    const auto t0 = Clock::now();
    if (topo.is_first_stage()) {
      replica.stage().embed(step, hidden);
    } else {
      hidden = Tensor(DType::F32, {batch, c.hidden_size});
      for (float& v : hidden.span<float>()) v = 0.01f;
    }
    const auto t1 = Clock::now();
    replica.stage().run_layers(step, hidden);
    const auto t2 = Clock::now();
    Tensor logits;
    if (topo.is_last_stage()) replica.stage().logits(hidden, rows, logits);
    const auto t3 = Clock::now();
    if (rep == 0) continue;  // warm-up
    embed.push_back(topo.is_first_stage() ? ms(t0, t1) : 0);
    layers.push_back(ms(t1, t2));
    head.push_back(topo.is_last_stage() ? ms(t2, t3) : 0);
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {median(embed), median(layers), median(head)};
}

// Every stage's StageTime (its tp_rank 0's), on every rank; collective over the world.
std::vector<StageTime> time_stages(runtime::Replica& replica, const BenchOptions& o, int batch, int block_size) {
  const int position = o.prompt_len + o.gen_len / 2;
  const int64_t blocks = int64_t{batch} * (position / block_size + 1);
  parallel::run_collectively(replica.world(), [&] {
    TESSERA_CHECK(blocks <= replica.kv_blocks(), "--stage-times: ", blocks, " KV blocks needed, ", replica.kv_blocks(),
                  " in the cache");
  });
  const StageTime mine = time_own_stage(replica, batch, position, block_size);
  const parallel::Topology& topo = replica.topology();
  const float send[3] = {static_cast<float>(mine.embed_ms), static_cast<float>(mine.layers_ms),
                         static_cast<float>(mine.head_ms)};
  std::vector<float> all(static_cast<size_t>(topo.world_size()) * 3);
  replica.world().all_gather(parallel::host_span(send), parallel::host_span(all));
  std::vector<StageTime> stages;
  for (int s = 0; s < topo.pp(); ++s) {
    const float* f = &all[static_cast<size_t>(topo.rank_of(s, 0)) * 3];
    stages.push_back({f[0], f[1], f[2]});
  }
  return stages;
}

// (read + write bytes) / time of the best of five copies: the peak a memory-bound kernel can hope for.
double measure_host_copy_bandwidth(size_t bytes) {
  std::vector<char> a(bytes, 1), b(bytes, 0);
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * static_cast<double>(bytes) / s / 1e9);
  }
  return best;
}

// One batch: B requests submitted at once. Prefill ends when every request has its first token (with chunked
// prefill some decode steps of early requests fall inside it); decode is the rest, gen_len - 1 steps of B tokens.
BenchResult run_batch(runtime::Replica& replica, const BenchOptions& o, int batch, int prompt_len, int gen_len,
                      uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, replica.config().vocab_size - 1);
  std::vector<Clock::time_point> first(static_cast<size_t>(batch));
  std::vector<bool> seen(static_cast<size_t>(batch), false);
  for (int b = 0; b < batch; ++b) {
    runtime::GenerationRequest request;
    for (int i = 0; i < prompt_len; ++i) request.prompt.push_back(token(rng));
    request.max_new_tokens = gen_len;  // no stop ids: every request makes exactly gen_len tokens
    request.on_token = [&first, &seen, b](const runtime::TokenEvent&) {
      if (!seen[b]) first[b] = Clock::now();
      seen[b] = true;
    };
    replica.engine().scheduler().submit(std::move(request));
  }
  const auto t0 = Clock::now();
  replica.engine().run_until_idle();
  const auto t_end = Clock::now();
  const auto prefilled = *std::max_element(first.begin(), first.end());

  BenchResult r;
  r.batch = batch;
  r.prefill_seconds = std::chrono::duration<double>(prefilled - t0).count();
  r.decode_seconds = std::chrono::duration<double>(t_end - prefilled).count();
  r.prefill_tokens_per_s = static_cast<double>(batch) * prompt_len / r.prefill_seconds;
  if (gen_len > 1 && r.decode_seconds > 0) {
    r.decode_tokens_per_s = static_cast<double>(batch) * (gen_len - 1) / r.decode_seconds;
    r.step_ms = 1e3 * r.decode_seconds / (gen_len - 1);
    r.bytes_per_step = decode_step_bytes(replica.config(), replica.topology().tp(), o, batch);
    r.achieved_gb_per_s = r.bytes_per_step / (r.step_ms * 1e-3) / 1e9;
  }
  return r;
}

void write_json(const std::string& path, const BenchOptions& o, const runtime::Replica& replica,
                const std::vector<BenchResult>& results, double copy_gb_per_s, const std::vector<StageTime>& times) {
  nlohmann::json j;
  j["model"] = o.model;
  j["backend"] = o.backend;
  j["tp"] = o.tp;
  j["pp"] = o.pp;
  j["micro_batches"] = o.micro_batches > 0 ? o.micro_batches : o.pp;
  const parallel::ParallelLayout& layout = replica.topology().layout();
  nlohmann::json stages = nlohmann::json::array();
  const std::vector<int64_t> costs = runtime::stage_decode_costs(replica.config(), layout);
  for (int s = 0; s < layout.pp; ++s) {
    const parallel::LayerRange r = parallel::stage_layers(replica.config().num_layers, layout, s);
    stages.push_back({{"stage", s}, {"layers", {{"begin", r.begin}, {"end", r.end}}},
                      {"decode_cost_weights", costs[static_cast<size_t>(s)]}});
    if (!times.empty()) {
      const StageTime& t = times[static_cast<size_t>(s)];
      stages.back()["step_ms"] = {{"embed", t.embed_ms}, {"layers", t.layers_ms}, {"head", t.head_ms},
                                  {"total", t.total_ms()}};
    }
  }
  j["stages"] = stages;
  j["prompt_len"] = o.prompt_len;
  j["gen_len"] = o.gen_len;
  j["weight_bytes_rank0"] = replica.weight_bytes();
  if (copy_gb_per_s > 0) j["copy_bandwidth_gb_per_s"] = copy_gb_per_s;
  for (const BenchResult& r : results) {
    nlohmann::json row = {{"batch", r.batch},
                          {"prefill_seconds", r.prefill_seconds},
                          {"prefill_tokens_per_s", r.prefill_tokens_per_s},
                          {"decode_seconds", r.decode_seconds},
                          {"decode_tokens_per_s", r.decode_tokens_per_s},
                          {"decode_step_ms", r.step_ms},
                          {"decode_bytes_per_step", r.bytes_per_step},
                          {"decode_achieved_gb_per_s", r.achieved_gb_per_s}};
    if (copy_gb_per_s > 0) row["roofline_fraction"] = r.achieved_gb_per_s / copy_gb_per_s;
    j["results"].push_back(row);
  }
  std::ofstream out(path);
  TESSERA_CHECK(out.good(), "--json: cannot write ", path);
  out << j.dump(2) << "\n";
}

int run_leader(runtime::Replica& replica, const BenchOptions& o, const std::vector<int>& batches, double copy_gb_per_s,
               const std::vector<StageTime>& times) {
  const runtime::ModelConfig& c = replica.config();
  const parallel::ParallelLayout& layout = replica.topology().layout();
  const int micro_batches = o.micro_batches > 0 ? o.micro_batches : o.pp;
  std::printf("tessera bench: %s on %d ranks (%s, %d micro-batch%s in flight), backend %s%s; prompt %d tokens, %d new "
              "tokens\n",
              c.name.c_str(), replica.topology().world_size(), layout.to_string().c_str(), micro_batches,
              micro_batches == 1 ? "" : "es", o.backend.c_str(),
              o.backend == "cpu" ? (", weights " + o.weight_dtype + ", KV cache " + o.kv_cache_dtype).c_str() : "",
              o.prompt_len, o.gen_len);
  if (layout.pp > 1) {
    // What --pp-layers auto balances: each stage's weights read per decode step on one rank, in layers' worth.
    const std::vector<int64_t> costs = runtime::stage_decode_costs(c, layout);
    const double per_layer = static_cast<double>(runtime::layer_decode_cost(c, layout.tp));
    std::printf("stages (decode cost in layers' worth of weights, the LM head on the last):");
    for (int s = 0; s < layout.pp; ++s) {
      const parallel::LayerRange r = parallel::stage_layers(c.num_layers, layout, s);
      std::printf(" %d: layers %d-%d%s %.1f;", s, r.begin, r.end - 1, s == layout.pp - 1 ? " + head" : "",
                  static_cast<double>(costs[static_cast<size_t>(s)]) / per_layer);
    }
    std::printf("\n");
  }
  std::printf("rank 0: weights %.1f MB, KV cache %.1f MB (%d blocks)\n", static_cast<double>(replica.weight_bytes()) / 1e6,
              static_cast<double>(replica.kv_cache_bytes()) / 1e6, replica.kv_blocks());
  if (o.backend == "cpu") {
    // The kernels' instruction set, from cpuid unless TESSERA_CPU_ISA forces one (validated at startup).
    std::printf("cpu kernels: %s\n", kernels::cpu::describe_cpu_kernels().c_str());
  }
  if (!times.empty()) {
    std::printf("stage step ms (--stage-times: each stage alone, one decode step of %d sequences at position %d):",
                *std::max_element(batches.begin(), batches.end()), o.prompt_len + o.gen_len / 2);
    for (size_t s = 0; s < times.size(); ++s) {
      const StageTime& t = times[s];
      std::printf(" %zu: %.2f (embed %.2f, layers %.2f, head %.2f);", s, t.total_ms(), t.embed_ms, t.layers_ms,
                  t.head_ms);
    }
    std::printf("\n");
  }
  if (copy_gb_per_s > 0) std::printf("copy bandwidth (read + write): %.1f GB/s\n", copy_gb_per_s);
  std::printf("%6s %14s %14s %12s %14s %10s%s\n", "batch", "prefill tok/s", "decode tok/s", "step ms", "bytes/step",
              "GB/s", copy_gb_per_s > 0 ? "   roofline" : "");
  std::fflush(stdout);
  std::vector<BenchResult> results;
  for (size_t i = 0; i < batches.size(); ++i) {
    const int b = batches[i];
    // Warm-up: the same batch size through a short run (allocations, GEMM plans, CUDA graphs of that size).
    if (!o.no_warmup) run_batch(replica, o, b, std::min(o.prompt_len, 8), std::min(o.gen_len, 4), o.seed + 1000 + i);
    const BenchResult r = run_batch(replica, o, b, o.prompt_len, o.gen_len, o.seed + i);
    std::printf("%6d %14.1f %14.1f %12.3f %14.3e %10.2f", r.batch, r.prefill_tokens_per_s, r.decode_tokens_per_s,
                r.step_ms, r.bytes_per_step, r.achieved_gb_per_s);
    if (copy_gb_per_s > 0) std::printf("   %7.1f%%", 100.0 * r.achieved_gb_per_s / copy_gb_per_s);
    std::printf("\n");
    std::fflush(stdout);
    results.push_back(r);
  }
  if (!o.json_path.empty()) write_json(o.json_path, o, replica, results, copy_gb_per_s, times);
  return 0;
}

int run_bench(const BenchOptions& o) {
  parallel::MpiSession mpi(nullptr, nullptr);
  const int rank = mpi.world_rank();
  std::unique_ptr<RankSupervision> supervision;
  try {
    auto world = parallel::MpiCommunicator::world();
    std::vector<int> batches;
    double copy_gb_per_s = 0;
    parallel::ParallelLayout layout;
    parallel::run_collectively(*world, [&] {
      TESSERA_CHECK(!o.model.empty(), "no model given: pass --model FILE or dummy:<preset>");
      configure_cpu_threads();
      TESSERA_CHECK(o.backend == "cpu" || o.backend == "cuda", "--backend must be cpu or cuda, got '", o.backend, "'");
      TESSERA_CHECK(o.prompt_len >= 1 && o.gen_len >= 1, "--prompt-len and --gen-len must be >= 1");
      TESSERA_CHECK(o.bandwidth_gib > 0 && o.bandwidth_gib <= 64, "--bandwidth-gib must be in (0, 64]");
      kernels::cpu::parse_weight_format(o.weight_dtype);
      kernels::cpu::parse_kv_dtype(o.kv_cache_dtype);
      if (o.backend == "cpu") {  // a bad TESSERA_CPU_ISA / TESSERA_CPU_ACTIVATIONS fails here, on every rank at once
        apply_cpu_activations(o.cpu_activations);
        kernels::cpu::packed_isa();
        kernels::cpu::activation_format();
      }
      batches = parse_batches(o.batches);
      layout = runtime::resolve_pipeline_layout(o.model, o.tp, o.pp, o.pp_layers);  // --pp-layers, before any load
      // Before the replica takes the memory; on rank 0's device (device 0 under the default binding).
      if (rank == 0 && o.measure_bandwidth) {
        const auto bytes = static_cast<size_t>(o.bandwidth_gib * double(1 << 30));
        copy_gb_per_s = o.backend == "cuda" ? measure_device_copy_bandwidth(bytes) : measure_host_copy_bandwidth(bytes);
      }
    });
    supervision = std::make_unique<RankSupervision>(*world, layout, batch_watchdog_options());
    runtime::ReplicaOptions ro;
    ro.activity = &supervision->activity();
    ro.model = o.model;
    ro.layout = layout;
    ro.backend = o.backend;
    ro.max_sequences = *std::max_element(batches.begin(), batches.end());
    ro.max_sequence_length = o.prompt_len + o.gen_len;
    ro.max_step_tokens = o.max_step_tokens;
    ro.micro_batches = o.micro_batches;
    ro.pipeline_transfer = o.pp_transfer;
    ro.weight_format = kernels::cpu::parse_weight_format(o.weight_dtype);
    ro.kv_dtype = kernels::cpu::parse_kv_dtype(o.kv_cache_dtype);
    ro.gpu.memory_fraction = o.gpu_memory_fraction;
    if (o.no_cuda_graphs) ro.gpu.graph_batch_sizes.clear();
    auto replica = runtime::Replica::create(ro);
    std::vector<StageTime> times;
    if (o.stage_times) times = time_stages(*replica, o, ro.max_sequences, ro.block_size);
    if (rank != 0) return follow_leader(*replica, supervision->watchdog());
    return lead_replica(*replica, supervision->watchdog(),
                        [&] { return run_leader(*replica, o, batches, copy_gb_per_s, times); });
  } catch (const parallel::CollectiveFailure& e) {
    if (supervision) supervision->stop_after_collective_failure();
    if (rank == 0) std::fprintf(stderr, "tessera: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace

void add_bench_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("bench", "Prefill and decode throughput per batch size (run under mpirun)");
  auto o = std::make_shared<BenchOptions>();
  cmd->add_option("--model", o->model, "Model: a .gguf file, a Hugging Face directory or dummy:<preset>")->required();
  cmd->add_option("--backend", o->backend, "Compute backend: cpu or cuda");
  cmd->add_option("--tp", o->tp, "Tensor-parallel size");
  cmd->add_option("--pp", o->pp, "Pipeline-parallel size");
  cmd->add_option("--pp-layers", o->pp_layers, kPpLayersHelp);
  cmd->add_option("--batch", o->batches, "Batch sizes to measure, comma-separated (e.g. 1,8,64)");
  cmd->add_option("--prompt-len", o->prompt_len, "Prompt tokens per request (random ids)");
  cmd->add_option("--gen-len", o->gen_len, "New tokens per request (end-of-generation ignored)");
  cmd->add_option("--max-step-tokens", o->max_step_tokens, "Tokens per engine step (prefill chunk size)");
  cmd->add_option("--micro-batches", o->micro_batches,
                  "Plans in flight through the pipeline (default 0: pp; 1: one step at a time)")
      ->check(CLI::Range(0, 255));
  add_pp_transfer_option(*cmd, o->pp_transfer);
  add_cpu_activations_option(*cmd, o->cpu_activations);
  add_kv_cache_dtype_option(*cmd, o->kv_cache_dtype);
  cmd->add_option("--weight-dtype", o->weight_dtype, "CPU backend: native (default), f32, bf16 or q8_0 projection matrices");
  cmd->add_option("--gpu-memory-fraction", o->gpu_memory_fraction, "CUDA backend: share of the GPU to use");
  cmd->add_flag("--no-cuda-graphs", o->no_cuda_graphs, "CUDA backend: run decode steps without CUDA graphs");
  cmd->add_flag("--no-warmup", o->no_warmup, "Skip the short warm-up run before each batch size");
  cmd->add_option("--seed", o->seed, "Seed of the random prompts");
  cmd->add_option("--json", o->json_path, "Also write the results as JSON to this file");
  cmd->add_flag("--stage-times", o->stage_times,
                "Before the run, time each pipeline stage's own compute (embedding, layers, LM head) for one decode step "
                "of the largest --batch, every stage at once without the transfers: the balance --pp-layers sets");
  cmd->add_flag("--measure-bandwidth", o->measure_bandwidth,
                "Measure the copy bandwidth of rank 0's memory (host memcpy on cpu, device-to-device on cuda) and "
                "report each decode step's share of it");
  cmd->add_option("--bandwidth-gib", o->bandwidth_gib, "GiB copied by --measure-bandwidth");
  cmd->callback([&action, o] { action = [o] { return run_bench(*o); }; });
}

}  // namespace tessera::launcher
