#include "runtime/engine/engine.h"

#include <unordered_map>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

Engine::Engine(parallel::Communicator& world, StageExecutor& executor, int kv_blocks, int block_size,
               SchedulerLimits limits, parallel::RankActivity* activity)
    : world_(world),
      executor_(executor),
      scheduler_(kv_blocks, block_size, limits),
      activity_(activity ? *activity : own_activity_),
      faults_(FaultInjector::from_environment(world.rank())) {}

bool Engine::in_step() const {
  const auto a = activity_.snapshot().activity;
  return a == parallel::Activity::kExecutingStep || a == parallel::Activity::kHeartbeat;
}

void Engine::step(EngineObserver* observer, Clock::time_point plan_started) {
  parallel::StepPlan plan = scheduler_.next_plan();
  plan.step_index = next_step_++;
  const auto execute_started = Clock::now();
  const double planning = std::chrono::duration<double>(execute_started - plan_started).count();
  activity_.set(parallel::Activity::kExecutingStep, plan.step_index);
  parallel::broadcast_step_plan(world_, plan);
  faults_.before_execute(plan);
  const std::vector<StepOutput> outputs = executor_.execute(plan);
  const auto executed = Clock::now();
  activity_.set(parallel::Activity::kIdle);
  scheduler_.complete(plan, outputs);
  if (observer) {
    StepReport report;
    report.running = scheduler_.running();
    report.waiting = scheduler_.waiting();
    report.kv_used_blocks = scheduler_.blocks().used_blocks();
    report.kv_total_blocks = scheduler_.blocks().total_blocks();
    for (const auto& s : plan.sequences) report.tokens += s.new_tokens.size();
    report.execute_seconds = std::chrono::duration<double>(executed - execute_started).count();
    report.plan_seconds = planning + seconds_since(executed);
    report.totals = scheduler_.stats();
    observer->on_step(report);
  }
}

void Engine::run_until_idle() {
  TESSERA_CHECK(world_.rank() == 0, "the engine is driven by the leader (rank 0) only");
  while (!scheduler_.idle()) step(nullptr, Clock::now());
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

void Engine::heartbeat() {
  parallel::StepPlan plan;
  plan.heartbeat = true;
  plan.step_index = next_step_++;
  activity_.set(parallel::Activity::kHeartbeat, plan.step_index);
  parallel::broadcast_step_plan(world_, plan);
  world_.barrier();  // every follower answers
  activity_.set(parallel::Activity::kIdle);
}

void Engine::serve(RequestQueue& queue, EngineStatus& status, EngineObserver* observer,
                   const std::atomic<bool>& stop_now, const ServeLoopOptions& options) {
  TESSERA_CHECK(world_.rank() == 0, "the engine is driven by the leader (rank 0) only");
  // Tickets of the queue -> the scheduler's ids, for cancellation; entries leave when their request finishes.
  std::unordered_map<uint64_t, uint64_t> ids;
  auto last_heartbeat = Clock::now();
  status.mark_progress();
  try {
    for (;;) {
      const auto plan_started = Clock::now();
      RequestQueue::Work work = queue.take();
      for (auto& [ticket, request] : work.submitted) {
        auto user_finish = std::move(request.on_finish);
        const uint64_t t = ticket;
        request.on_finish = [&ids, t, user_finish](const GenerationResult& r) {
          ids.erase(t);
          if (user_finish) user_finish(r);
        };
        auto finish = request.on_finish;
        try {
          const uint64_t id = scheduler_.submit(std::move(request));
          ids[t] = id;
        } catch (const Error& e) {
          // The frontend validates first; what is left (a prompt the cache can never hold) ends here.
          GenerationResult failed;
          failed.finish_reason = "error";
          failed.error = e.what();
          finish(failed);
        }
      }
      for (const uint64_t ticket : work.cancelled) {
        if (const auto it = ids.find(ticket); it != ids.end()) scheduler_.cancel(it->second);
      }
      if (stop_now.load()) {
        scheduler_.fail_all("the server is shutting down");
        queue.report_engine_waiting(0);
        return;
      }
      if (!scheduler_.idle()) {
        step(observer, plan_started);
        queue.report_engine_waiting(scheduler_.waiting());
        status.mark_progress();
        continue;
      }
      queue.report_engine_waiting(0);
      if (queue.closed() && queue.waiting() == 0) return;  // drained
      if (Clock::now() - last_heartbeat >= options.heartbeat_interval) {
        heartbeat();
        last_heartbeat = Clock::now();
        status.mark_progress();
        continue;
      }
      queue.wait_for_work(std::chrono::duration_cast<std::chrono::milliseconds>(
          options.heartbeat_interval - (Clock::now() - last_heartbeat)));
    }
  } catch (const std::exception& e) {
    status.fail(e.what());
    scheduler_.fail_all(std::string("the engine failed: ") + e.what());
    throw;
  }
}

void Engine::shutdown() {
  parallel::StepPlan plan;
  plan.shutdown = true;
  plan.step_index = next_step_++;
  parallel::broadcast_step_plan(world_, plan);
  activity_.set(parallel::Activity::kStopping);
}

void Engine::follow() {
  TESSERA_CHECK(world_.rank() != 0, "follow() runs on the followers only");
  for (;;) {
    parallel::StepPlan plan;
    activity_.set(parallel::Activity::kWaitingForPlan);
    parallel::broadcast_step_plan(world_, plan);
    if (plan.shutdown) {
      activity_.set(parallel::Activity::kStopping);
      return;
    }
    if (plan.heartbeat) {
      activity_.set(parallel::Activity::kHeartbeat, plan.step_index);
      world_.barrier();
      continue;
    }
    activity_.set(parallel::Activity::kExecutingStep, plan.step_index);
    faults_.before_execute(plan);
    executor_.execute(plan);
  }
}

}  // namespace tessera::runtime
