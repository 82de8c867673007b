#pragma once
// Stage backends: how a Replica builds this rank's ModelStage for ReplicaOptions::backend. "cpu" is built in;
// other backends live in their own targets (the CUDA one in runtime/cuda/, built only with CUDA) and register
// themselves here when the program links them (the launcher does, tests that need them do), so the CPU runtime
// never depends on CUDA.
//
// Building runs in two collective phases, because a rank that fails alone must not leave the others waiting in a
// collective (parallel/collective_failure.h): load() may fail on one rank and does no collective; after every rank
// has agreed that all loaded, finish() may use collectives (a device communicator), then allocate.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/topology.h"
#include "runtime/engine/replica_options.h"
#include "runtime/model/model_config.h"
#include "runtime/model/model_stage.h"
#include "runtime/model/tensor_parallel_shard.h"
#include "runtime/model/weight_source.h"

namespace tessera::runtime {

// Everything a backend needs to build this rank's stage. References outlive the builder.
struct StageRequest {
  const ReplicaOptions& options;
  const ModelConfig& config;
  const WeightSource& weights;
  const parallel::Topology& topology;
  TensorParallelShard shard;
  parallel::LayerRange layers;
  parallel::HostCommunicator& tp;  // host (MPI) TP group
  int max_sequence_length = 0;
  int64_t wanted_kv_blocks = 0;  // what max_sequences sequences of max_sequence_length need
};

struct BuiltStage {
  std::unique_ptr<ModelStage> stage;
  size_t weight_bytes = 0;    // this rank's weights, in the backend's memory
  size_t kv_cache_bytes = 0;  // this rank's KV cache
};

// The minimum of `value` over every rank of the world: collective.
using WorldMin = std::function<int64_t(int64_t value)>;

class StageBuilder {
 public:
  virtual ~StageBuilder() = default;
  // Phase 1, no collectives: loads this rank's weights; returns how many KV blocks it can hold, at most
  // request.wanted_kv_blocks (a GPU: what fits in its memory budget after the weights).
  virtual int64_t load() = 0;
  // Phase 2: `kv_blocks` is the minimum of load() over the world (every rank addresses the same blocks). May
  // call world_min (every rank does, at the same points) before it allocates.
  virtual BuiltStage finish(int64_t kv_blocks, const WorldMin& world_min) = 0;
};

using StageBackendFactory = std::function<std::unique_ptr<StageBuilder>(const StageRequest&)>;

// Adds or replaces a backend. Call before Replica::create (not thread-safe with it).
void register_stage_backend(const std::string& name, StageBackendFactory factory);
// Throws tessera::Error naming the backend and the registered ones when `name` is not registered.
std::unique_ptr<StageBuilder> make_stage_builder(const std::string& name, const StageRequest& request);
std::vector<std::string> stage_backend_names();

}  // namespace tessera::runtime
