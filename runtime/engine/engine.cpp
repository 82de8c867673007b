#include "runtime/engine/engine.h"

#include "kernels/base/error.h"

namespace tessera::runtime {

Engine::Engine(parallel::Communicator& world, StageExecutor& executor, int kv_blocks, int block_size,
               SchedulerLimits limits)
    : world_(world), executor_(executor), scheduler_(kv_blocks, block_size, limits) {}

void Engine::step() {
  parallel::StepPlan plan = scheduler_.next_plan();
  plan.step_index = next_step_++;
  parallel::broadcast_step_plan(world_, plan);
  const std::vector<SampledToken> sampled = executor_.execute(plan);
  scheduler_.complete(plan, sampled);
}

void Engine::run_until_idle() {
  TESSERA_CHECK(world_.rank() == 0, "the engine is driven by the leader (rank 0) only");
  while (!scheduler_.idle()) step();
}

GenerationResult Engine::generate(GenerationRequest request) {
  GenerationResult result;
  auto user_finish = std::move(request.on_finish);
  request.on_finish = [&](const GenerationResult& r) {
    result = r;
    if (user_finish) user_finish(r);
  };
  scheduler_.submit(std::move(request));
  run_until_idle();
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
