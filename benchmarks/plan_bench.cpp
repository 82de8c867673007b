// The leader's control-plane cost per step, with the real scheduler and a dummy model (made-up sampled tokens, no
// forward pass): for 16, 64 and 256 running decode sequences (each with a `--prompt`-token prompt already
// prefilled), the time of Scheduler::next_plan + StepPlanEncoder::encode + Scheduler::complete per step and the
// delta message's bytes, against the full encoding (encode_step_plan) of the same plans; and a follower's decode
// time for both. The dummy model's own work (making the outputs) is not timed.
//
//   build/benchmarks/tessera_bench_plan [--steps 1000] [--prompt 512] [--block 16]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "parallel/step_plan.h"
#include "parallel/step_plan_delta.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/stage_executor.h"

namespace {

using namespace tessera;
using Clock = std::chrono::steady_clock;

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

std::vector<runtime::StepOutput> dummy_model(const parallel::StepPlan& plan) {
  std::vector<runtime::StepOutput> out;
  out.reserve(plan.sequences.size());
  for (const parallel::SequenceStep& s : plan.sequences) {
    if (!runtime::reports_output(s)) continue;
    runtime::StepOutput o;
    o.sequence_id = s.sequence_id;
    o.sampled = s.sample;
    o.token = 1 + (s.start_position * 31 + s.new_tokens.back() * 7) % 31991;
    out.push_back(std::move(o));
  }
  return out;
}

// Times are medians over the measured steps (robust to the preemptions of a busy machine), bytes are means.
struct Row {
  int sequences = 0;
  double plan_delta_us = 0;   // next_plan + delta encode + complete
  double encode_delta_us = 0; // of which the delta encode
  double plan_full_us = 0;    // next_plan + full encode + complete
  double encode_full_us = 0;
  double decode_delta_us = 0; // a follower
  double decode_full_us = 0;
  double delta_bytes = 0, full_bytes = 0;
  double blocks_per_sequence = 0;
};

struct Samples {
  std::vector<double> plan_delta, encode_delta, plan_full, encode_full, decode_delta, decode_full;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

Row measure(int sequences, int steps, int prompt, int block) {
  runtime::SchedulerLimits limits;
  limits.max_sequences = sequences;
  limits.max_step_tokens = std::max(2048, sequences);
  // Long enough that no sequence ends before the last measured step, however many steps the prefill takes.
  limits.max_sequence_length = prompt + steps + 64 + sequences * prompt / limits.max_step_tokens;
  const int kv_blocks = sequences * ((limits.max_sequence_length + block - 1) / block) + sequences;
  runtime::Scheduler scheduler(kv_blocks, block, limits);
  std::mt19937 rng(static_cast<unsigned>(sequences));
  std::uniform_int_distribution<int32_t> token(0, 31999);
  for (int i = 0; i < sequences; ++i) {
    runtime::GenerationRequest r;
    for (int j = 0; j < prompt; ++j) r.prompt.push_back(token(rng));
    r.max_new_tokens = limits.max_sequence_length - prompt;
    r.sampling.temperature = 0.8f;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = static_cast<uint64_t>(i);
    scheduler.submit(std::move(r));
  }
  parallel::StepPlanEncoder encoder;
  parallel::StepPlanDecoder follower;
  uint64_t step = 0;
  Samples samples;
  const auto run_step = [&](Row* row) {
    const auto t0 = Clock::now();
    parallel::StepPlan plan = scheduler.next_plan();
    plan.step_index = step++;
    const auto t1 = Clock::now();
    const std::vector<std::byte> bytes = encoder.encode(plan);
    const auto t2 = Clock::now();
    const std::vector<runtime::StepOutput> outputs = dummy_model(plan);  // not timed
    const auto t3 = Clock::now();
    scheduler.complete(plan, outputs);
    const auto t4 = Clock::now();
    const std::vector<std::byte> full = parallel::encode_step_plan(plan);
    const auto t5 = Clock::now();
    const parallel::StepPlan decoded = follower.decode(bytes);
    const auto t6 = Clock::now();
    const parallel::StepPlan decoded_full = parallel::decode_step_plan(full);
    const auto t7 = Clock::now();
    if (!(decoded == plan) || !(decoded_full == plan)) {
      std::fprintf(stderr, "step %llu: a decoded plan differs from the leader's\n",
                   static_cast<unsigned long long>(plan.step_index));
      std::exit(1);
    }
    if (row == nullptr) return;
    const double schedule = micros(t1 - t0) + micros(t4 - t3);
    samples.plan_delta.push_back(schedule + micros(t2 - t1));
    samples.encode_delta.push_back(micros(t2 - t1));
    samples.plan_full.push_back(schedule + micros(t5 - t4));
    samples.encode_full.push_back(micros(t5 - t4));
    samples.decode_delta.push_back(micros(t6 - t5));
    samples.decode_full.push_back(micros(t7 - t6));
    row->delta_bytes += static_cast<double>(bytes.size());
    row->full_bytes += static_cast<double>(full.size());
    for (const auto& s : plan.sequences) row->blocks_per_sequence += static_cast<double>(s.block_table.size());
  };
  // Prefill (not measured) until every sequence decodes, then a few warm-up decode steps.
  for (int i = 0; i < 10000 && (scheduler.waiting() > 0 || scheduler.running() < static_cast<size_t>(sequences));
       ++i) {
    run_step(nullptr);
  }
  for (int i = 0; i < 8; ++i) run_step(nullptr);
  Row row;
  row.sequences = sequences;
  for (int i = 0; i < steps; ++i) run_step(&row);
  if (scheduler.running() != static_cast<size_t>(sequences)) {
    std::fprintf(stderr, "%d sequences: only %zu still running after the measured steps\n", sequences,
                 scheduler.running());
    std::exit(1);
  }
  const double n = steps;
  row.delta_bytes /= n;
  row.full_bytes /= n;
  row.plan_delta_us = median(samples.plan_delta);
  row.encode_delta_us = median(samples.encode_delta);
  row.plan_full_us = median(samples.plan_full);
  row.encode_full_us = median(samples.encode_full);
  row.decode_delta_us = median(samples.decode_delta);
  row.decode_full_us = median(samples.decode_full);
  row.blocks_per_sequence /= n * sequences;
  return row;
}

int arg(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = arg(argc, argv, "--steps", 1000);
  const int prompt = arg(argc, argv, "--prompt", 512);
  const int block = arg(argc, argv, "--block", 16);
  std::printf("control plane per decode step: %d steps, %d-token prompts, %d-token blocks, dummy model\n", steps,
              prompt, block);
  std::printf("planning = next_plan + encode + complete on the leader; decode = one follower; times: median per "
              "step, bytes: mean per step\n\n");
  std::printf("%5s %6s | %-29s | %-29s | %-17s | %s\n", "", "blocks", "   delta (StepPlanEncoder)",
              "   full (encode_step_plan)", "follower decode", "size");
  std::printf("%5s %6s | %9s %9s %9s | %9s %9s %9s | %8s %8s | %s\n", "seqs", "/seq", "plan us", "encode us",
              "bytes", "plan us", "encode us", "bytes", "delta us", "full us", "full/delta");
  for (const int sequences : {16, 64, 256}) {
    const Row r = measure(sequences, steps, prompt, block);
    std::printf("%5d %6.1f | %9.1f %9.2f %9.1f | %9.1f %9.2f %9.1f | %8.2f %8.2f | %.1fx\n", r.sequences,
                r.blocks_per_sequence, r.plan_delta_us, r.encode_delta_us, r.delta_bytes, r.plan_full_us,
                r.encode_full_us, r.full_bytes, r.decode_delta_us, r.decode_full_us, r.full_bytes / r.delta_bytes);
  }
  return 0;
}
