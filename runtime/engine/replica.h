#pragma once
// One model replica across the MPI world: every rank builds its part (topology, communicators, its shard of the
// weights, its KV cache, the engine); the backend named by ReplicaOptions::backend builds the stage
// (runtime/engine/stage_backend.h). Construction is collective and fails together: when any rank cannot build
// its part (bad layout, missing file, a model that cannot be split that way), every rank throws the same
// parallel::CollectiveFailure and the leader reports it once.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "parallel/process_groups.h"
#include "parallel/topology.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/replica_options.h"
#include "runtime/engine/stage_executor.h"
#include "runtime/model/model_config.h"
#include "runtime/model/model_stage.h"

namespace tessera::runtime {

class Replica {
 public:
  // Collective over every rank of the world.
  static std::unique_ptr<Replica> create(const ReplicaOptions& options);

  const parallel::Topology& topology() const { return *topology_; }
  const ModelConfig& config() const { return config_; }
  parallel::HostCommunicator& world() { return *groups_.world; }
  StageExecutor& executor() { return *executor_; }
  ModelStage& stage() { return *stage_; }  // the backend's stage (tests inspect it)
  Engine& engine() { return *engine_; }
  size_t weight_bytes() const { return weight_bytes_; }
  size_t kv_cache_bytes() const { return kv_cache_bytes_; }
  int kv_blocks() const { return kv_blocks_; }
  int max_sequence_length() const { return max_sequence_length_; }
  // What ReplicaOptions::verify_sha256 checked on this rank ("" when nothing was verified).
  const std::string& integrity_summary() const { return integrity_summary_; }
  // Seconds this rank took to verify (when asked), open and load its part of the model.
  double load_seconds() const { return load_seconds_; }

 private:
  Replica() = default;

  std::optional<parallel::Topology> topology_;
  parallel::ProcessGroups groups_;
  ModelConfig config_;
  std::unique_ptr<ModelStage> stage_;
  std::unique_ptr<StageExecutor> executor_;
  std::unique_ptr<Engine> engine_;
  size_t weight_bytes_ = 0;
  size_t kv_cache_bytes_ = 0;
  int kv_blocks_ = 0;
  int max_sequence_length_ = 0;
  std::string integrity_summary_;
  double load_seconds_ = 0.0;
};

}  // namespace tessera::runtime
