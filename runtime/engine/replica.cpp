#include "runtime/engine/replica.h"

#include <mpi.h>

#include <algorithm>

#include "parallel/collective_failure.h"
#include "parallel/mpi/mpi_communicator.h"
#include "runtime/model/model_source.h"
#include "runtime/model/stage_weights.h"
#include "runtime/model/tensor_parallel_shard.h"

namespace tessera::runtime {

std::unique_ptr<Replica> Replica::create(const ReplicaOptions& options) {
  std::unique_ptr<Replica> replica(new Replica());
  auto world = parallel::MpiCommunicator::world();
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  // Phase 1: the layout. Deterministic, but agreed on anyway so that no rank goes on alone.
  parallel::run_collectively(*world, [&] { replica->topology_.emplace(size, rank, options.layout); });
  replica->groups_ = parallel::make_mpi_process_groups(*replica->topology_);
  const parallel::Topology& topo = *replica->topology_;

  // Phase 2: the model, this rank's shard of it, its KV cache.
  parallel::run_collectively(*replica->groups_.world, [&] {
    ModelSource source = open_model_source(options.model);
    const ModelConfig& config = source.config;
    check_tensor_parallel_split(config, topo.tp());
    const parallel::LayerRange layers = parallel::stage_layers(config.num_layers, topo.pp(), topo.stage());
    const TensorParallelShard shard = make_tensor_parallel_shard(config, topo.tp(), topo.tp_rank());

    int max_len = options.max_sequence_length;
    if (max_len <= 0) max_len = std::min(config.max_position_embeddings > 0 ? config.max_position_embeddings : 4096, 4096);
    TESSERA_CHECK(max_len >= 1, "maximum sequence length must be >= 1, got ", max_len);
    TESSERA_CHECK(options.block_size >= 1, "KV block size must be >= 1, got ", options.block_size);
    TESSERA_CHECK(options.max_sequences >= 1, "max_sequences must be >= 1, got ", options.max_sequences);
    KvCacheShape cache;
    cache.num_layers = layers.size();
    cache.block_size = options.block_size;
    cache.num_blocks = options.max_sequences * ((max_len + options.block_size - 1) / options.block_size);
    cache.kv_heads = shard.local_kv_heads();
    cache.head_dim = config.head_dim;

    StageWeights weights =
        load_stage_weights(*source.weights, config, shard, layers, topo.is_first_stage(), topo.is_last_stage(),
                           options.weight_format);
    replica->weight_bytes_ = weights.bytes();
    replica->kv_cache_bytes_ = cache.bytes();
    replica->max_sequence_length_ = max_len;
    replica->config_ = config;
    replica->stage_ = std::make_unique<DecoderStage>(config, shard, std::move(weights), cache, *replica->groups_.tp);
    replica->executor_ = std::make_unique<StageExecutor>(topo, replica->groups_, *replica->stage_);
    SchedulerLimits limits;
    limits.max_sequences = options.max_sequences;
    limits.max_step_tokens = std::max(options.max_step_tokens, options.max_sequences);
    limits.max_sequence_length = max_len;
    replica->engine_ = std::make_unique<Engine>(*replica->groups_.world, *replica->executor_, cache.num_blocks,
                                                options.block_size, limits);
  });
  return replica;
}

}  // namespace tessera::runtime
