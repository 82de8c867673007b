#pragma once
// One model replica across the MPI world: every rank builds its part (topology, communicators, its shard of the
// weights, its KV cache, the engine). Construction is collective and fails together: when any rank cannot build
// its part (bad layout, missing file, a model that cannot be split that way), every rank throws the same
// parallel::CollectiveFailure and the leader reports it once.
#include <filesystem>
#include <memory>
#include <optional>

#include "parallel/process_groups.h"
#include "parallel/topology.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/stage_executor.h"
#include "runtime/model/decoder_stage.h"
#include "runtime/model/model_config.h"

namespace tessera::runtime {

struct ReplicaOptions {
  std::filesystem::path model;
  parallel::ParallelLayout layout;
  int block_size = 16;
  int max_sequence_length = 0;  // 0: the model's context length, capped at 4096
  int max_sequences = 1;        // the KV cache holds this many sequences of max_sequence_length
  int max_step_tokens = 2048;   // tokens per engine step (decode tokens + prefill chunks)
  // How the projection matrices are kept: f32 (exact, the default) or bf16 / q8_0 (fewer bytes per decode step).
  kernels::cpu::WeightFormat weight_format = kernels::cpu::WeightFormat::kF32;
};

class Replica {
 public:
  // Collective over MPI_COMM_WORLD.
  static std::unique_ptr<Replica> create(const ReplicaOptions& options);

  const parallel::Topology& topology() const { return *topology_; }
  const ModelConfig& config() const { return config_; }
  parallel::Communicator& world() { return *groups_.world; }
  StageExecutor& executor() { return *executor_; }
  Engine& engine() { return *engine_; }
  size_t weight_bytes() const { return weight_bytes_; }
  size_t kv_cache_bytes() const { return kv_cache_bytes_; }
  int max_sequence_length() const { return max_sequence_length_; }

 private:
  Replica() = default;

  std::optional<parallel::Topology> topology_;
  parallel::ProcessGroups groups_;
  ModelConfig config_;
  std::unique_ptr<DecoderStage> stage_;
  std::unique_ptr<StageExecutor> executor_;
  std::unique_ptr<Engine> engine_;
  size_t weight_bytes_ = 0;
  size_t kv_cache_bytes_ = 0;
  int max_sequence_length_ = 0;
};

}  // namespace tessera::runtime
