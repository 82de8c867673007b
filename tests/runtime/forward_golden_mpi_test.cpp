// The distributed forward pass against Hugging Face transformers, under mpirun with the layout given by
// TESSERA_TEST_TP / TESSERA_TEST_PP (and TESSERA_TEST_PP_LAYERS, as --pp-layers: "19,11" or "auto", whose split
// TESSERA_TEST_EXPECT_PP_LAYERS states) and the model by TESSERA_TEST_MODEL ("smollm2" or a tiny-models fixture name);
// TESSERA_TEST_KV_DTYPE=f16 runs the CPU KV cache in f16 against the same goldens.
// Greedy tokens must match exactly and the logits at the last prompt position within 1e-3 x max|logit|. Where the
// reference's top-2 logit gap is below 1e-4 at a step where the tokens differ, the step is a near tie: the test says
// so and compares only up to that position. The tolerance is never loosened.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <nlohmann/json.hpp>

#include "runtime/engine/replica.h"
#include "runtime/model/model_source.h"
#include "runtime/model/model_summary.h"
#include "runtime/model/pipeline_partition.h"
#include "tests/support/json_file.h"
#include "runtime/model/sha256.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

constexpr double kLogitTolerance = 1e-3;  // relative to max|logit|
constexpr double kNearTieGap = 1e-4;

struct GoldenCase {
  std::string name;
  std::vector<int32_t> prompt, generated;
  std::vector<double> gaps;
  double max_abs = 0;
  std::vector<int32_t> logit_ids;
  std::vector<double> logit_values;
};

// Two schemas: scripts/golden/smollm2_forward.py ("prompt_ids", a subset of the prefill logits) and
// scripts/golden/tiny_models.py ("prompt", full logits at every step).
GoldenCase parse_smollm2_case(const nlohmann::json& c) {
  GoldenCase g;
  g.name = c.at("name").get<std::string>();
  g.prompt = c.at("prompt_ids").get<std::vector<int32_t>>();
  g.generated = c.at("generated_ids").get<std::vector<int32_t>>();
  g.gaps = c.at("step_top2_gap").get<std::vector<double>>();
  const auto& logits = c.at("last_prompt_logits");
  g.max_abs = logits.at("max_abs").get<double>();
  g.logit_ids = logits.at("ids").get<std::vector<int32_t>>();
  g.logit_values = logits.at("values").get<std::vector<double>>();
  return g;
}

GoldenCase parse_tiny_case(const nlohmann::json& c, size_t index) {
  GoldenCase g;
  g.name = concat("prompt ", index);
  g.prompt = c.at("prompt").get<std::vector<int32_t>>();
  g.generated = c.at("generated").get<std::vector<int32_t>>();
  const auto rows = c.at("logits").get<std::vector<std::vector<double>>>();
  for (size_t step = 0; step < g.generated.size(); ++step) {
    std::vector<double> row = rows.at(step);
    std::partial_sort(row.begin(), row.begin() + 2, row.end(), std::greater<>());
    g.gaps.push_back(row[0] - row[1]);
  }
  g.logit_values = rows.at(0);
  for (size_t i = 0; i < g.logit_values.size(); ++i) {
    g.logit_ids.push_back(static_cast<int32_t>(i));
    g.max_abs = std::max(g.max_abs, std::abs(g.logit_values[i]));
  }
  return g;
}

std::vector<GoldenCase> load_golden(const std::filesystem::path& path) {
  const nlohmann::json json = testing::read_json(path);
  std::vector<GoldenCase> cases;
  for (const auto& c : json.at("cases")) {
    cases.push_back(c.contains("prompt_ids") ? parse_smollm2_case(c) : parse_tiny_case(c, cases.size()));
  }
  return cases;
}

struct TestModel {
  std::string name;  // "smollm2" or a tiny-models folder
  std::filesystem::path model;
  std::filesystem::path golden;
};

// TESSERA_TEST_MODEL: "smollm2" (the default model) or a folder of tests/fixtures/tiny-models; the golden file is
// that folder's golden.json unless TESSERA_TEST_GOLDEN names another folder's (a sharded copy of the same weights).
TestModel test_model() {
  const char* name = std::getenv("TESSERA_TEST_MODEL");
  const std::string model = name ? name : "smollm2";
  if (model == "smollm2") {
    return {model, testing::default_model_path(), testing::fixture("smollm2/forward_golden.json")};
  }
  const char* golden = std::getenv("TESSERA_TEST_GOLDEN");
  return {model, testing::fixture("tiny-models/" + model),
          testing::fixture("tiny-models/" + std::string(golden ? golden : model) + "/golden.json")};
}

// The default model must be the very file the goldens were made from: its SHA-256 equals the fixture's
// "model_sha256" (scripts/golden/smollm2_forward.py writes it), so another file can never pass against them. Absent,
// it skips, or fails where test data is required (TESSERA_REQUIRE_TEST_DATA=1). Rank 0 hashes the file and every rank
// checks the same digest, so all ranks fail together. The tiny models are committed next to their goldens.
void require_model_of_golden(const TestModel& model) {
  if (model.name != "smollm2") return;
  TESSERA_REQUIRE_MODEL(model.model);
  const std::string expected = testing::read_json(model.golden).at("model_sha256").get<std::string>();
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::string actual;
  if (rank == 0) {
    try {
      actual = runtime::sha256_file(model.model);
    } catch (const std::exception& e) {
      actual = e.what();  // every rank fails with the reason
    }
  }
  int size = static_cast<int>(actual.size());
  MPI_Bcast(&size, 1, MPI_INT, 0, MPI_COMM_WORLD);
  actual.resize(static_cast<size_t>(size));
  MPI_Bcast(actual.data(), size, MPI_CHAR, 0, MPI_COMM_WORLD);
  ASSERT_EQ(actual, expected) << model.model << " is not the file " << model.golden
                              << " was made from (SHA-256 differs): its goldens say nothing about this file";
}

// Greedy tokens equal the reference's, except after a near tie where the reference's top-2 gap was below
// kNearTieGap: there the test says so and stops comparing.
void expect_tokens_match(const GoldenCase& golden, const std::vector<int32_t>& tokens) {
  ASSERT_EQ(tokens.size(), golden.generated.size()) << golden.name;
  for (size_t i = 0; i < golden.generated.size(); ++i) {
    if (tokens[i] == golden.generated[i]) continue;
    if (golden.gaps[i] < kNearTieGap) {
      std::printf("[ NEAR-TIE ] %s: step %zu differs (top-2 gap %.3g < %.0e); compared up to that position\n",
                  golden.name.c_str(), i, golden.gaps[i], kNearTieGap);
      return;
    }
    ADD_FAILURE() << golden.name << ": token " << i << " is " << tokens[i] << ", transformers has "
                  << golden.generated[i] << " (top-2 gap " << golden.gaps[i] << ")";
    return;
  }
}

std::string env_text(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

ReplicaOptions replica_options(const TestModel& model, int max_sequences) {
  ReplicaOptions options;
  options.model = model.model;
  // What the launcher does with --tp, --pp and --pp-layers.
  options.layout = resolve_pipeline_layout(model.model, testing::env_int("TESSERA_TEST_TP", 1),
                                           testing::env_int("TESSERA_TEST_PP", 1), env_text("TESSERA_TEST_PP_LAYERS"));
  if (const std::string expected = env_text("TESSERA_TEST_EXPECT_PP_LAYERS"); !expected.empty()) {
    EXPECT_EQ(parallel::layer_counts_text(options.layout.stage_layer_counts), expected);
  }
  options.max_sequence_length = 256;
  options.max_sequences = max_sequences;
  if (const char* transfer = std::getenv("TESSERA_TEST_PP_TRANSFER")) options.pipeline_transfer = transfer;
  // TESSERA_TEST_KV_DTYPE=f16: the CPU KV cache in f16 (--kv-cache-dtype), held to the same goldens and tolerances.
  if (const std::string kv_dtype = env_text("TESSERA_TEST_KV_DTYPE"); !kv_dtype.empty()) {
    options.kv_dtype = kernels::cpu::parse_kv_dtype(kv_dtype);
  }
  return options;
}

TEST(ForwardGolden, GreedyTokensAndLogitsMatchTransformers) {
  const TestModel model = test_model();
  require_model_of_golden(model);
  if (::testing::Test::HasFatalFailure() || ::testing::Test::IsSkipped()) return;
  const std::vector<GoldenCase> cases = load_golden(model.golden);
  auto replica = Replica::create(replica_options(model, 1));
  const parallel::Topology& topo = replica->topology();
  SCOPED_TRACE(topo.describe());
  if (!topo.layout().stage_layer_counts.empty()) {
    // The rank loaded the partition's layers: its weights are what inspect plans for this rank of the layout.
    const parallel::LayerRange layers = parallel::stage_layers(replica->config().num_layers, topo.layout(), topo.stage());
    std::printf("[ LAYOUT   ] %s: this rank runs layers %d-%d\n", topo.describe().c_str(), layers.begin, layers.end - 1);
    const ModelSource source = open_model_source(model.model);
    const std::vector<RankFootprint> plan = plan_rank_footprints(  // native: the ReplicaOptions default kept here
        source.config, *source.weights, topo.layout(), kernels::cpu::WeightFormat::kNative);
    EXPECT_EQ(plan.at(static_cast<size_t>(topo.rank())).layers.begin, layers.begin);
    EXPECT_EQ(replica->weight_bytes(), plan.at(static_cast<size_t>(topo.rank())).held_bytes);
  }

  // The sampling rank checks the prefill logits of every case, in order: a sequence's first sampled row is its
  // prompt's last position (wherever its prefill started: the prefix cache may have held the shared chat prefix).
  size_t logits_case = 0;
  std::set<uint64_t> sampled_before;
  replica->executor().set_logits_observer([&](const parallel::StepPlan& plan, const Tensor& logits) {
    if (plan.sequences.empty() || !plan.sequences[0].sample ||
        !sampled_before.insert(plan.sequences[0].sequence_id).second) {
      return;
    }
    ASSERT_LT(logits_case, cases.size());
    const GoldenCase& golden = cases[logits_case++];
    const float* row = logits.data<float>();
    double worst = 0;
    for (size_t i = 0; i < golden.logit_ids.size(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(row[golden.logit_ids[i]]) - golden.logit_values[i]));
    }
    EXPECT_LE(worst, kLogitTolerance * golden.max_abs)
        << golden.name << ": largest logit difference " << worst << " exceeds " << kLogitTolerance << " x " << golden.max_abs;
  });

  if (topo.rank() != 0) {
    replica->engine().follow();
    if (topo.rank() == sampling_rank(topo)) {
      EXPECT_EQ(logits_case, cases.size());
    }
    return;
  }
  for (const GoldenCase& golden : cases) {
    GenerationRequest request;
    request.prompt = golden.prompt;
    request.max_new_tokens = static_cast<int>(golden.generated.size());
    expect_tokens_match(golden, replica->engine().generate(request).tokens);
  }
  if (topo.rank() == sampling_rank(topo)) {
    EXPECT_EQ(logits_case, cases.size());
  }
  replica->engine().shutdown();
}

// Every case at once through the continuous-batching scheduler, with a step budget small enough that prompts are
// prefilled in chunks interleaved with other sequences' decode steps: the same tokens as alone.
TEST(ForwardGolden, BatchedWithChunkedPrefillMatchesTransformers) {
  const TestModel model = test_model();
  require_model_of_golden(model);
  if (::testing::Test::HasFatalFailure() || ::testing::Test::IsSkipped()) return;
  const std::vector<GoldenCase> cases = load_golden(model.golden);
  ReplicaOptions options = replica_options(model, static_cast<int>(cases.size()));
  options.max_step_tokens = 8 + static_cast<int>(cases.size());
  auto replica = Replica::create(options);
  if (replica->topology().rank() != 0) {
    replica->engine().follow();
    return;
  }
  std::vector<std::vector<int32_t>> outputs(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    GenerationRequest request;
    request.prompt = cases[i].prompt;
    request.max_new_tokens = static_cast<int>(cases[i].generated.size());
    request.on_finish = [&outputs, i](const GenerationResult& r) { outputs[i] = r.tokens; };
    replica->engine().scheduler().submit(std::move(request));
  }
  replica->engine().run_until_idle();
  replica->engine().shutdown();
  for (size_t i = 0; i < cases.size(); ++i) expect_tokens_match(cases[i], outputs[i]);
}

// 16 requests at once through the pipeline's micro-batches (the default: pp plans in flight, each over its own
// sequences), in a KV pool small enough that sequences are preempted and recomputed, finishing at different steps
// (each asks for a different prefix of its golden continuation): the same tokens as transformers.
TEST(ForwardGolden, SixteenConcurrentMicroBatchedWithPreemptionMatchTransformers) {
  const TestModel model = test_model();
  require_model_of_golden(model);
  if (::testing::Test::HasFatalFailure() || ::testing::Test::IsSkipped()) return;
  const std::vector<GoldenCase> cases = load_golden(model.golden);
  constexpr int kRequests = 16;
  ReplicaOptions options = replica_options(model, kRequests);
  std::vector<GoldenCase> wanted;
  int64_t total_blocks = 0, largest = 0;
  for (int r = 0; r < kRequests; ++r) {
    GoldenCase c = cases[static_cast<size_t>(r) % cases.size()];
    const size_t keep = std::max<size_t>(1, c.generated.size() - (static_cast<size_t>(r) % 4) * c.generated.size() / 5);
    c.generated.resize(keep);
    c.gaps.resize(keep);
    const int64_t blocks = (static_cast<int64_t>(c.prompt.size() + keep) + options.block_size - 1) / options.block_size;
    total_blocks += blocks;
    largest = std::max(largest, blocks);
    wanted.push_back(std::move(c));
  }
  options.kv_cache.blocks = std::max(largest + 1, total_blocks / 3);  // a third of what all need at once
  options.prefix_caching = false;  // every prompt computed: preemption, not cache hits, decides what runs
  auto replica = Replica::create(options);
  if (replica->topology().rank() != 0) {
    replica->engine().follow();
    return;
  }
  EXPECT_EQ(replica->engine().scheduler().limits().micro_batches, replica->topology().pp());
  std::vector<std::vector<int32_t>> outputs(wanted.size());
  for (size_t i = 0; i < wanted.size(); ++i) {
    GenerationRequest request;
    request.prompt = wanted[i].prompt;
    request.max_new_tokens = static_cast<int>(wanted[i].generated.size());
    request.on_finish = [&outputs, i](const GenerationResult& r) { outputs[i] = r.tokens; };
    replica->engine().scheduler().submit(std::move(request));
  }
  replica->engine().run_until_idle();
  const uint64_t preemptions = replica->engine().scheduler().stats().preemptions;
  replica->engine().shutdown();
  EXPECT_GT(preemptions, 0u) << "a pool of " << options.kv_cache.blocks << " blocks for " << total_blocks
                             << " wanted should preempt";
  for (size_t i = 0; i < wanted.size(); ++i) expect_tokens_match(wanted[i], outputs[i]);
}

}  // namespace
}  // namespace tessera::runtime
