#include "runtime/engine/engine.h"

#include <algorithm>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Engine::Engine(parallel::Communicator& world, StageExecutor& executor, int kv_blocks, int block_size,
               int max_sequence_length)
    : world_(world),
      executor_(executor),
      blocks_(kv_blocks),
      block_size_(block_size),
      max_sequence_length_(max_sequence_length) {}

std::vector<SampledToken> Engine::run(parallel::StepPlan& plan) {
  plan.step_index = next_step_++;
  parallel::broadcast_step_plan(world_, plan);
  return executor_.execute(plan);
}

GenerationResult Engine::generate(const GenerationRequest& request, const std::function<void(int32_t)>& on_token) {
  TESSERA_CHECK(world_.rank() == 0, "generate() runs on the leader only");
  TESSERA_CHECK(!request.prompt.empty(), "the prompt is empty: nothing to generate from");
  TESSERA_CHECK(request.max_new_tokens >= 1, "max_new_tokens must be >= 1, got ", request.max_new_tokens);
  const int64_t total = static_cast<int64_t>(request.prompt.size()) + request.max_new_tokens;
  TESSERA_CHECK(total <= max_sequence_length_, "prompt of ", request.prompt.size(), " tokens plus ",
                request.max_new_tokens, " new tokens exceeds the maximum sequence length ", max_sequence_length_);
  const int needed_blocks = static_cast<int>((total + block_size_ - 1) / block_size_);
  std::vector<int32_t> table = blocks_.allocate(needed_blocks);

  GenerationResult result;
  parallel::SequenceStep seq;
  seq.sequence_id = next_sequence_++;
  seq.start_position = 0;
  seq.new_tokens = request.prompt;
  seq.block_table = table;
  seq.sampling = request.sampling;
  const auto start = std::chrono::steady_clock::now();
  auto decode_start = start;
  try {
    for (int i = 0; i < request.max_new_tokens; ++i) {
      parallel::StepPlan plan;
      plan.sequences = {seq};
      const std::vector<SampledToken> sampled = run(plan);
      TESSERA_CHECK(sampled.size() == 1, "step ", plan.step_index, " returned ", sampled.size(), " tokens, expected 1");
      const int32_t token = sampled[0].token;
      if (i == 0) {
        result.prefill_seconds = seconds_since(start);
        decode_start = std::chrono::steady_clock::now();
      }
      result.tokens.push_back(token);
      on_token(token);
      if (std::find(request.stop_ids.begin(), request.stop_ids.end(), token) != request.stop_ids.end()) {
        result.finish_reason = "stop";
        break;
      }
      seq.start_position += static_cast<int32_t>(seq.new_tokens.size());
      seq.new_tokens = {token};
    }
  } catch (...) {
    blocks_.release(table);
    throw;
  }
  if (result.finish_reason.empty()) result.finish_reason = "length";
  result.decode_seconds = seconds_since(decode_start);
  parallel::StepPlan done;
  done.finished = {seq.sequence_id};
  run(done);
  blocks_.release(table);
  return result;
}

void Engine::shutdown() {
  parallel::StepPlan plan;
  plan.shutdown = true;
  plan.step_index = next_step_++;
  parallel::broadcast_step_plan(world_, plan);
}

void Engine::follow() {
  TESSERA_CHECK(world_.rank() != 0, "follow() runs on the followers only");
  for (;;) {
    parallel::StepPlan plan;
    parallel::broadcast_step_plan(world_, plan);
    if (plan.shutdown) return;
    executor_.execute(plan);
  }
}

}  // namespace tessera::runtime
