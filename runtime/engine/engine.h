#pragma once
// The engine loop of one rank. The leader (rank 0) decides every step: it builds a StepPlan, broadcasts it over the
// world communicator and runs its own part; followers loop on receiving plans until a plan says shutdown.
// This first scheduler runs one request at a time (prefill as one step, then one decode step per token); the
// StepPlan already carries several sequences so continuous batching slots in without changing the ranks' side.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "parallel/step_plan.h"
#include "runtime/engine/block_allocator.h"
#include "runtime/engine/stage_executor.h"

namespace tessera::runtime {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int max_new_tokens = 64;
  parallel::SamplingSettings sampling;
  std::vector<int32_t> stop_ids;  // generation ends after emitting one of these
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, the stop id included when one ended it
  std::string finish_reason;    // "stop" or "length"
  double prefill_seconds = 0;   // prompt in, first token out
  double decode_seconds = 0;    // the remaining tokens
};

class Engine {
 public:
  Engine(parallel::Communicator& world, StageExecutor& executor, int kv_blocks, int block_size,
         int max_sequence_length);

  // Leader only. Calls on_token for every generated id as soon as it is known.
  GenerationResult generate(const GenerationRequest& request, const std::function<void(int32_t)>& on_token);
  // Leader only: tells every rank to leave follow().
  void shutdown();
  // Followers: execute the leader's plans until shutdown.
  void follow();

 private:
  std::vector<SampledToken> run(parallel::StepPlan& plan);

  parallel::Communicator& world_;
  StageExecutor& executor_;
  KvBlockAllocator blocks_;
  int block_size_;
  int max_sequence_length_;
  uint64_t next_step_ = 0;
  uint64_t next_sequence_ = 1;
};

}  // namespace tessera::runtime
