// The leader's control-plane cost per step, with the real scheduler and a dummy model (made-up sampled tokens, no
// forward pass): for 16, 64 and 256 running decode sequences (each with a `--prompt`-token prompt already
// prefilled), the time of Scheduler::next_plan + StepPlanEncoder::encode + Scheduler::complete per step and the
// delta message's bytes, against the full encoding (encode_step_plan) of the same plans; and a follower's decode
// time for both. The dummy model's own work (making the outputs) is not timed. Completed plans are handed back
// (Scheduler::recycle) as the engine does. The sizes run in turns of 50 steps, so each round starts with caches
// that the other sizes' rounds have used, as the engine's forward pass would leave them.
//
//   build/benchmarks/tessera_bench_plan [--steps 1000] [--prompt 512] [--block 16] [--batches 16,64,256]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
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

// The server the cases share: one KV cache and one context limit for every batch size, as a deployment has (its
// cache is sized from memory, not from how many sequences happen to run), large enough for the largest batch.
struct ServerShape {
  int max_sequence_length = 0;
  int kv_blocks = 0;
  ServerShape(int largest_batch, int steps, int prompt, int block) {
    // Long enough that no sequence ends before the last measured step, however many steps the prefill takes.
    max_sequence_length = prompt + block + steps + 64 + largest_batch * prompt / std::max(2048, largest_batch);
    kv_blocks = largest_batch * ((max_sequence_length + block - 1) / block) + largest_batch;
  }
};

// One batch size: its scheduler with `sequences` decoding sequences, the codecs, and what was measured.
class Case {
 public:
  Case(int sequences, const ServerShape& server, int prompt, int block) : sequences_(sequences) {
    runtime::SchedulerLimits limits;
    limits.max_sequences = sequences;
    limits.max_step_tokens = std::max(2048, sequences);
    limits.max_sequence_length = server.max_sequence_length;
    scheduler_ = std::make_unique<runtime::Scheduler>(server.kv_blocks, block, limits);
    std::mt19937 rng(static_cast<unsigned>(sequences));
    std::uniform_int_distribution<int32_t> token(0, 31999);
    for (int i = 0; i < sequences; ++i) {
      runtime::GenerationRequest r;
      // prompt .. prompt + block - 1 tokens, so that the sequences fill a block (and publish it in the prefix cache)
      // on different steps, as requests of different lengths do: with equal prompts a small batch published all its
      // blocks on the same steps, and its median step published none.
      for (int j = 0; j < prompt + i % block; ++j) r.prompt.push_back(token(rng));
      r.max_new_tokens = limits.max_sequence_length - prompt - block;
      r.sampling.temperature = 0.8f;
      r.sampling.top_p = 0.95f;
      r.sampling.seed = static_cast<uint64_t>(i);
      scheduler_->submit(std::move(r));
    }
    // Prefill (not measured) until every sequence decodes, then a few warm-up decode steps.
    for (int i = 0; i < 10000 && (scheduler_->waiting() > 0 || scheduler_->running() < static_cast<size_t>(sequences));
         ++i) {
      step(false);
    }
    for (int i = 0; i < 8; ++i) step(false);
    row_.sequences = sequences;
  }

  void step(bool measured) {
    runtime::Scheduler& scheduler = *scheduler_;
    const auto t0 = Clock::now();
    parallel::StepPlan plan = scheduler.next_plan();
    plan.step_index = step_++;
    const auto t1 = Clock::now();
    const std::vector<std::byte> bytes = encoder_.encode(plan);
    const auto t2 = Clock::now();
    const std::vector<runtime::StepOutput> outputs = dummy_model(plan);  // not timed
    const auto t3 = Clock::now();
    scheduler.complete(plan, outputs);
    const auto t4 = Clock::now();
    const std::vector<std::byte> full = parallel::encode_step_plan(plan);
    const auto t5 = Clock::now();
    const parallel::StepPlan decoded = follower_.decode(bytes);
    const auto t6 = Clock::now();
    const parallel::StepPlan decoded_full = parallel::decode_step_plan(full);
    const auto t7 = Clock::now();
    if (!(decoded == plan) || !(decoded_full == plan)) {
      std::fprintf(stderr, "step %llu: a decoded plan differs from the leader's\n",
                   static_cast<unsigned long long>(plan.step_index));
      std::exit(1);
    }
    const auto blocks = static_cast<double>(std::accumulate(
        plan.sequences.begin(), plan.sequences.end(), size_t{0},
        [](size_t n, const parallel::SequenceStep& s) { return n + s.block_table.size(); }));
    scheduler.recycle(std::move(plan));  // as the engine does: the next plan reuses its storage (not timed)
    if (!measured) return;
    const double schedule = micros(t1 - t0) + micros(t4 - t3);
    samples_.plan_delta.push_back(schedule + micros(t2 - t1));
    samples_.encode_delta.push_back(micros(t2 - t1));
    samples_.plan_full.push_back(schedule + micros(t5 - t4));
    samples_.encode_full.push_back(micros(t5 - t4));
    samples_.decode_delta.push_back(micros(t6 - t5));
    samples_.decode_full.push_back(micros(t7 - t6));
    row_.delta_bytes += static_cast<double>(bytes.size());
    row_.full_bytes += static_cast<double>(full.size());
    row_.blocks_per_sequence += blocks;
    ++measured_;
  }

  Row finish() {
    if (scheduler_->running() != static_cast<size_t>(sequences_)) {
      std::fprintf(stderr, "%d sequences: only %zu still running after the measured steps\n", sequences_,
                   scheduler_->running());
      std::exit(1);
    }
    Row row = row_;
    const double n = measured_;
    row.delta_bytes /= n;
    row.full_bytes /= n;
    row.plan_delta_us = median(samples_.plan_delta);
    row.encode_delta_us = median(samples_.encode_delta);
    row.plan_full_us = median(samples_.plan_full);
    row.encode_full_us = median(samples_.encode_full);
    row.decode_delta_us = median(samples_.decode_delta);
    row.decode_full_us = median(samples_.decode_full);
    row.blocks_per_sequence /= n * sequences_;
    return row;
  }

 private:
  int sequences_;
  std::unique_ptr<runtime::Scheduler> scheduler_;
  parallel::StepPlanEncoder encoder_;
  parallel::StepPlanDecoder follower_;
  uint64_t step_ = 0;
  int measured_ = 0;
  Samples samples_;
  Row row_;
};

int arg(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

// --batches 16,64,256 (the default): the batch sizes, each a scheduler of its own over one ServerShape.
std::vector<int> batch_list(int argc, char** argv) {
  std::string text = "16,64,256";
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--batches") == 0) text = argv[i + 1];
  }
  std::vector<int> batches;
  for (size_t at = 0; at < text.size();) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const int n = std::atoi(text.substr(at, comma - at).c_str());
    if (n < 1) {
      std::fprintf(stderr, "--batches: '%s' is not a list of positive sizes\n", text.c_str());
      std::exit(2);
    }
    batches.push_back(n);
    at = comma + 1;
  }
  return batches;
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = arg(argc, argv, "--steps", 1000);
  const int prompt = arg(argc, argv, "--prompt", 512);
  const int block = arg(argc, argv, "--block", 16);
  const std::vector<int> batches = batch_list(argc, argv);
  std::printf("control plane per decode step: %d steps, %d-token prompts, %d-token blocks, dummy model\n", steps,
              prompt, block);
  std::printf("planning = next_plan + encode + complete on the leader; decode = one follower; times: median per "
              "step, bytes: mean per step\n\n");
  std::printf("%5s %6s | %-37s | %-29s | %-17s | %s\n", "", "blocks", "   delta (StepPlanEncoder)",
              "   full (encode_step_plan)", "follower decode", "size");
  std::printf("%5s %6s | %9s %7s %9s %9s | %9s %9s %9s | %8s %8s | %s\n", "seqs", "/seq", "plan us", "ns/seq",
              "encode us", "bytes", "plan us", "encode us", "bytes", "delta us", "full us", "full/delta");
  // The sizes take turns, a round of kRound steps each, so that the machine's slow and fast phases (this is a
  // shared VM) fall on all of them alike and their ratios are comparable.
  constexpr int kRound = 50;
  std::vector<std::unique_ptr<Case>> cases;
  const ServerShape server(*std::max_element(batches.begin(), batches.end()), steps, prompt, block);
  for (const int sequences : batches) cases.push_back(std::make_unique<Case>(sequences, server, prompt, block));
  for (int done = 0; done < steps; done += kRound) {
    for (auto& c : cases) {
      for (int i = done; i < std::min(steps, done + kRound); ++i) c->step(true);
    }
  }
  for (auto& c : cases) {
    const Row r = c->finish();
    std::printf("%5d %6.1f | %9.1f %7.0f %9.2f %9.1f | %9.1f %9.2f %9.1f | %8.2f %8.2f | %.1fx\n", r.sequences,
                r.blocks_per_sequence, r.plan_delta_us, 1000 * r.plan_delta_us / r.sequences, r.encode_delta_us, r.delta_bytes, r.plan_full_us,
                r.encode_full_us, r.full_bytes, r.decode_delta_us, r.decode_full_us, r.full_bytes / r.delta_bytes);
  }
  return 0;
}
