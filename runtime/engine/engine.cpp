#include "runtime/engine/engine.h"

#include <algorithm>
#include <unordered_map>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Engine::Engine(parallel::HostCommunicator& world, StageExecutor& executor, int kv_blocks, int block_size,
               SchedulerLimits limits, parallel::RankActivity* activity)
    : world_(world),
      executor_(executor),
      scheduler_(kv_blocks, block_size, limits),
      plans_(world),
      pipeline_depth_(static_cast<size_t>(std::max(1, limits.micro_batches))),
      activity_(activity ? *activity : own_activity_),
      faults_(FaultInjector::from_environment(world.rank())) {
  TESSERA_CHECK(limits.micro_batches <= 255, "micro_batches must be at most 255, got ", limits.micro_batches);
}

bool Engine::in_step() const {
  const auto a = activity_.snapshot().activity;
  return a == parallel::Activity::kExecutingStep || a == parallel::Activity::kHeartbeat;
}

bool Engine::launch_next(EngineObserver* observer) {
  const auto plan_started = Clock::now();
  parallel::StepPlan plan = scheduler_.next_plan();
  if (plan.sequences.empty() && plan.finished.empty()) return false;
  plan.step_index = next_step_++;
  const bool has_work = !plan.sequences.empty();
  if (has_work) plan.micro_batch = static_cast<uint8_t>(launched_with_sequences_++ % pipeline_depth_);
  // The activity names the oldest plan in flight: the one a hung stage holds up first. The watchdog's step deadline
  // runs from this transition; the leader waits for that plan's outputs within depth launches.
  activity_.set(parallel::Activity::kExecutingStep, in_flight_.empty() ? plan.step_index : in_flight_.front().plan.step_index);
  const double planning = seconds_since(plan_started);
  const auto launch_started = Clock::now();
  plans_.publish(plan);
  faults_.before_execute(plan);
  PendingStepOutputs outputs = executor_.launch(plan);
  if (!has_work) {  // only announced finished sequences (their blocks are free now): nothing to complete
    if (in_flight_.empty()) activity_.set(parallel::Activity::kIdle);
    report(observer, plan, 0.0, planning);
    return false;
  }
  in_flight_.push_back(InFlightPlan{std::move(plan), std::move(outputs), launch_started, planning});
  return true;
}

void Engine::complete_oldest(EngineObserver* observer) {
  InFlightPlan f = std::move(in_flight_.front());
  in_flight_.pop_front();
  activity_.set(parallel::Activity::kExecutingStep, f.plan.step_index);
  const std::vector<StepOutput> outputs = f.outputs.wait();
  const auto executed = Clock::now();
  scheduler_.complete(f.plan, outputs);
  if (in_flight_.empty()) {
    activity_.set(parallel::Activity::kIdle);
  } else {
    activity_.set(parallel::Activity::kExecutingStep, in_flight_.front().plan.step_index);
  }
  const auto execution_began = std::max(f.launched, last_completed_);
  last_completed_ = executed;
  report(observer, f.plan, std::chrono::duration<double>(executed - execution_began).count(),
         f.planning_seconds + seconds_since(executed));
  scheduler_.recycle(std::move(f.plan));
}

void Engine::report(EngineObserver* observer, const parallel::StepPlan& plan, double execute_seconds,
                    double plan_seconds) const {
  if (!observer) return;
  StepReport report;
  report.running = scheduler_.running();
  report.waiting = scheduler_.waiting();
  report.kv_used_blocks = scheduler_.blocks().used_blocks();
  report.kv_total_blocks = scheduler_.blocks().total_blocks();
  for (const auto& s : plan.sequences) report.tokens += s.new_tokens.size();
  report.execute_seconds = execute_seconds;
  report.plan_seconds = plan_seconds;
  report.totals = scheduler_.stats();
  observer->on_step(report);
}

void Engine::advance(EngineObserver* observer) {
  while (in_flight_.size() < pipeline_depth_ && launch_next(observer)) {
  }
  if (!in_flight_.empty()) complete_oldest(observer);
}

void Engine::run_until_idle() {
  TESSERA_CHECK(world_.rank() == 0, "the engine is driven by the leader (rank 0) only");
  while (busy()) advance(nullptr);
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
  plans_.publish(plan);
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
        while (!in_flight_.empty()) complete_oldest(observer);  // the stages finish what they hold
        scheduler_.fail_all("the server is shutting down");
        queue.report_engine_waiting(0);
        return;
      }
      if (busy()) {
        advance(observer);
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
  plans_.publish(plan);
  plans_.flush();
  activity_.set(parallel::Activity::kStopping);
}

void Engine::follow() {
  TESSERA_CHECK(world_.rank() != 0, "follow() runs on the followers only");
  for (;;) {
    activity_.set(parallel::Activity::kWaitingForPlan);
    const parallel::StepPlan plan = plans_.receive();
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
    executor_.launch(plan);
  }
}

}  // namespace tessera::runtime
