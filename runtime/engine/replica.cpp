#include "runtime/engine/replica.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

#include "parallel/collective_failure.h"
#include "runtime/engine/stage_backend.h"
#include "runtime/model/model_integrity.h"
#include "runtime/model/model_source.h"
#include "runtime/model/tensor_parallel_shard.h"

namespace tessera::runtime {
namespace {

StageExecutor::Transfer pipeline_transfer(const std::string& name, const parallel::ProcessGroups& groups) {
  if (name == "full") return StageExecutor::Transfer::kFull;
  if (name == "sliced") return StageExecutor::Transfer::kSliced;
  TESSERA_CHECK(name == "auto", "pipeline transfer must be auto, full or sliced, got '", name, "'");
  return groups.pipeline_crosses_hosts ? StageExecutor::Transfer::kSliced : StageExecutor::Transfer::kFull;
}

}  // namespace

std::unique_ptr<Replica> Replica::create(const ReplicaOptions& options) {
  std::unique_ptr<Replica> replica(new Replica());
  auto world = parallel::make_mpi_world();
  const int rank = world->rank(), size = world->size();

  // Phase 1: the layout. Deterministic, but agreed on anyway so that no rank goes on alone.
  parallel::run_collectively(*world, [&] { replica->topology_.emplace(size, rank, options.layout); });
  replica->groups_ = parallel::make_mpi_process_groups(*replica->topology_);
  const parallel::Topology& topo = *replica->topology_;

  // Phase 2: the model and this rank's shard of its weights, loaded by the backend.
  ModelSource source;
  std::optional<StageRequest> request;
  std::unique_ptr<StageBuilder> builder;
  int64_t fits_blocks = 0;
  const auto load_start = std::chrono::steady_clock::now();
  parallel::run_collectively(*replica->groups_.world, [&] {
    // Integrity alongside the load: the files this rank maps are hashed on a background thread (its own reads, not
    // the mapping) while the backend loads them, and joined before the replica is ready. A mismatch on any rank
    // fails every rank with the one message naming the file; it is the error reported even when the load failed
    // too (a truncated or swapped file often breaks the load first).
    auto load = [&] {
      source = open_model_source(options.model);
      const ModelConfig& config = source.config;
      check_tensor_parallel_split(config, topo.tp());
      int max_len = options.max_sequence_length;
      if (max_len < 0) max_len = config.max_position_embeddings > 0 ? config.max_position_embeddings : 4096;
      if (max_len == 0) max_len = std::min(config.max_position_embeddings > 0 ? config.max_position_embeddings : 4096, 4096);
      TESSERA_CHECK(max_len >= 1, "maximum sequence length must be >= 1, got ", max_len);
      TESSERA_CHECK(options.block_size >= 1, "KV block size must be >= 1, got ", options.block_size);
      TESSERA_CHECK(options.max_sequences >= 1, "max_sequences must be >= 1, got ", options.max_sequences);
      const int64_t blocks_per_sequence = (max_len + options.block_size - 1) / options.block_size;
      request.emplace(StageRequest{options, source.config, *source.weights, topo,
                                   make_tensor_parallel_shard(config, topo.tp(), topo.tp_rank()),
                                   parallel::stage_layers(config.num_layers, topo.layout(), topo.stage()),
                                   *replica->groups_.tp, max_len, options.max_sequences * blocks_per_sequence});
      builder = make_stage_builder(options.backend, *request);
      fits_blocks = builder->load();
      replica->max_sequence_length_ = max_len;
      replica->config_ = config;
    };
    std::future<Sha256Verification> integrity;
    if (!options.verify_sha256.empty()) {
      Sha256Expectation expectation = load_sha256_expectation(options.verify_sha256);
      const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
      const int threads = std::max(1, hardware / std::max(1, options.kv_cache.ranks_on_node));
      integrity = start_model_sha256_verification(options.model, std::move(expectation), threads);
    }
    try {
      load();
    } catch (...) {
      if (integrity.valid()) integrity.get();  // throws the integrity failure, if any, in place of the load's
      throw;
    }
    if (integrity.valid()) replica->integrity_summary_ = integrity.get().summary();
  });
  replica->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

  // Phase 3: the KV cache, of the blocks every rank can hold (the leader hands out blocks for all), and the engine.
  parallel::HostCommunicator& world_group = *replica->groups_.world;
  const auto world_min = [&world_group](int64_t value) { return world_group.all_reduce_min(value); };
  const int64_t kv_blocks = world_min(fits_blocks);
  parallel::run_collectively(*replica->groups_.world, [&] {
    BuiltStage built = builder->finish(kv_blocks, world_min);
    replica->weight_bytes_ = built.weight_bytes;
    replica->kv_cache_bytes_ = built.kv_cache_bytes;
    replica->kv_blocks_ = static_cast<int>(kv_blocks);
    replica->stage_ = std::move(built.stage);
    replica->executor_ = std::make_unique<StageExecutor>(
        topo, replica->groups_, *replica->stage_, pipeline_transfer(options.pipeline_transfer, replica->groups_));
    SchedulerLimits limits;
    limits.max_sequences = options.max_sequences;
    limits.max_step_tokens = std::max(options.max_step_tokens, options.max_sequences);
    limits.max_sequence_length = replica->max_sequence_length_;
    limits.prefix_caching = options.prefix_caching;
    limits.vocab_size = replica->config_.vocab_size;
    limits.micro_batches = options.micro_batches > 0 ? options.micro_batches : topo.pp();
    replica->engine_ = std::make_unique<Engine>(*replica->groups_.world, *replica->executor_,
                                                replica->kv_blocks_, options.block_size, limits, options.activity);
  });
  return replica;
}

}  // namespace tessera::runtime
