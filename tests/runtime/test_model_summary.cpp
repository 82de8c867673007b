// model_summary (what `tessera inspect` prints), checked against what the engine really does: the per-rank f32
// bytes against StageWeights::bytes() of load_stage_weights for the same rank, the layout errors against the
// engine's own checks, the weight totals against the files (tiny Hugging Face models and SmolLM2's GGUF).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "parallel/topology.h"
#include "runtime/model/gguf_file.h"
#include "runtime/model/model_source.h"
#include "runtime/model/model_summary.h"
#include "runtime/model/stage_weights.h"

#include "tests/support/test_paths.h"
#include "tests/support/error_text.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;
using parallel::ParallelLayout;
using testing::error_of;

fs::path tiny(const std::string& name) { return testing::fixture("tiny-models/" + name); }

constexpr kernels::cpu::WeightFormat kFormats[] = {kernels::cpu::WeightFormat::kF32, kernels::cpu::WeightFormat::kBF16,
                                                   kernels::cpu::WeightFormat::kQ8_0, kernels::cpu::WeightFormat::kNative};

// Every rank of every layout, in every matrix format: the planned bytes are what load_stage_weights allocates,
// the rank's place agrees with Topology, and (the tiny models store F32) the stored bytes equal the f32 bytes.
// Hidden size 48 is not a whole number of q8_0 blocks, so q8_0 also covers the matrices kept in f32.
void expect_plan_matches_loading(const ModelSource& source, ParallelLayout layout, kernels::cpu::WeightFormat format) {
  const std::vector<RankFootprint> ranks = plan_rank_footprints(source.config, *source.weights, layout, format);
  ASSERT_EQ(ranks.size(), static_cast<size_t>(layout.tp * layout.pp));
  for (size_t i = 0; i < ranks.size(); ++i) {
    const RankFootprint& r = ranks[i];
    SCOPED_TRACE("rank " + std::to_string(i));
    const parallel::Topology topo(layout.tp * layout.pp, static_cast<int>(i), layout);
    EXPECT_EQ(r.rank, static_cast<int>(i));
    EXPECT_EQ(r.stage, topo.stage());
    EXPECT_EQ(r.tp_rank, topo.tp_rank());
    EXPECT_EQ(r.first_stage, topo.is_first_stage());
    EXPECT_EQ(r.last_stage, topo.is_last_stage());
    const parallel::LayerRange layers = parallel::stage_layers(source.config.num_layers, layout, topo.stage());
    EXPECT_EQ(r.layers.begin, layers.begin);  // --pp-layers' counts when the layout has them
    EXPECT_EQ(r.layers.end, layers.end);
    const StageWeights loaded =
        load_stage_weights(*source.weights, source.config, r.shard, r.layers, r.first_stage, r.last_stage, format);
    EXPECT_EQ(r.held_bytes, loaded.bytes());
    if (format == kernels::cpu::WeightFormat::kF32) {
      EXPECT_EQ(r.stored_bytes, r.held_bytes);
    }
  }
}

void expect_plan_matches_loading(const fs::path& model, const std::vector<ParallelLayout>& layouts) {
  const ModelSource source = open_model_source(model);
  for (const ParallelLayout& layout : layouts) {
    for (kernels::cpu::WeightFormat format : kFormats) {
      SCOPED_TRACE(model.filename().string() + " " + layout.to_string() + " " +
                   std::string(kernels::cpu::weight_format_name(format)));
      expect_plan_matches_loading(source, layout, format);
    }
  }
}

TEST(ModelSummary, TinyLlamaGqaFootprintsEqualLoadedWeights) {
  // One KV head: replicated on every rank whenever tp > 1.
  expect_plan_matches_loading(tiny("tiny-llama-gqa"), {{1, 1}, {2, 1}, {3, 1}, {6, 1}, {1, 2}, {1, 4}, {2, 2}, {3, 2},
                                                      {1, 2, {3, 1}}, {2, 2, {1, 3}}, {1, 3, {1, 1, 2}}});
  expect_plan_matches_loading(tiny("tiny-llama-gqa-sharded"), {{1, 1}, {2, 2}, {6, 3}});
}

TEST(ModelSummary, TinyQwen2FootprintsEqualLoadedWeights) {
  // QKV bias, tied embeddings (the last stage loads the embedding rows again as LM head), 3 KV heads.
  expect_plan_matches_loading(tiny("tiny-qwen2"), {{1, 1}, {3, 1}, {6, 1}, {1, 3}, {3, 2}, {6, 4}, {3, 2, {3, 1}},
                                                  {1, 3, {2, 1, 1}}});
}

TEST(ModelSummary, SingleRankHoldsEveryParameterInF32) {
  for (const char* name : {"tiny-llama-gqa", "tiny-qwen2"}) {
    SCOPED_TRACE(name);
    const ModelSource source = open_model_source(tiny(name));
    const ModelConfig& c = source.config;
    const auto ranks = plan_rank_footprints(c, *source.weights, {1, 1});
    ASSERT_EQ(ranks.size(), 1u);
    const int64_t embedding = int64_t{c.vocab_size} * c.hidden_size;
    const int64_t held = c.parameter_count() + (c.tie_word_embeddings ? embedding : 0);
    EXPECT_EQ(ranks[0].held_bytes, static_cast<uint64_t>(held) * 4);
  }
}

TEST(ModelSummary, WeightSummaryOfTinyModels) {
  const ModelSource source = open_model_source(tiny("tiny-qwen2"));
  const WeightSummary w = summarize_weights(source.config, *source.weights);
  // 4 layers x 12 weights (norms, Q/K/V, biases, output, gate/up/down) + embedding + final norm (LM head tied).
  EXPECT_EQ(w.tensors, 4 * 12 + 2);
  EXPECT_EQ(w.elements, source.config.parameter_count());
  ASSERT_EQ(w.by_type.size(), 1u);
  EXPECT_EQ(w.by_type[0].storage_type, "F32");
  EXPECT_EQ(w.by_type[0].stored_bytes, static_cast<uint64_t>(w.elements) * 4);
  EXPECT_EQ(w.stored_bytes, w.by_type[0].stored_bytes);

  const ModelSource llama = open_model_source(tiny("tiny-llama-gqa"));
  EXPECT_EQ(summarize_weights(llama.config, *llama.weights).tensors, 4 * 9 + 3);  // untied: LM head, no biases
}

TEST(ModelSummary, ImpossibleLayoutsFailWithTheEnginesMessage) {
  const ModelSource source = open_model_source(tiny("tiny-qwen2"));  // 6 heads, 3 KV heads, FFN 96, 4 layers
  const ModelConfig& c = source.config;
  auto plan = [&](int tp, int pp) { return error_of([&] { plan_rank_footprints(c, *source.weights, {tp, pp}); }); };
  // tp=2 divides the heads but neither divides nor is divided by 3 KV heads; tp=4 does not divide 6 heads.
  for (int tp : {0, 2, 4, 7}) {
    const std::string engine = error_of([&] { check_tensor_parallel_split(c, tp); });
    ASSERT_FALSE(engine.empty()) << "tp=" << tp;
    EXPECT_EQ(plan(tp, 1), engine);
  }
  EXPECT_NE(plan(2, 1).find("3 KV heads"), std::string::npos) << plan(2, 1);
  EXPECT_EQ(plan(1, 5), error_of([&] { parallel::stage_layers(c.num_layers, 5, 0); }));
  EXPECT_NE(plan(1, 5).find("cannot split 4 layers over pp=5"), std::string::npos);
  EXPECT_NE(plan(1, 0).find("pp=0"), std::string::npos);
  // A partition that does not fit the model: stage_layers' message (the flag, the counts, their sum, the layers).
  const std::string partition = error_of([&] { plan_rank_footprints(c, *source.weights, {1, 2, {3, 2}}); });
  EXPECT_EQ(partition, error_of([&] { parallel::stage_layers(c.num_layers, {1, 2, {3, 2}}, 0); }));
  EXPECT_NE(partition.find("--pp-layers 3,2: the counts sum to 5 layers but the model has 4"), std::string::npos)
      << partition;
}

// SmolLM2's GGUF: Q4_1 / Q8_0 / F32 tensors, tied embeddings, 9 heads over 3 KV heads.
class SmolLm2Summary : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::default_model_path();
    TESSERA_REQUIRE_MODEL(path_);
    source_ = open_model_source(path_);
  }
  fs::path path_;
  ModelSource source_;
};

TEST_F(SmolLm2Summary, WeightTotalsEqualTheFile) {
  const WeightSummary w = summarize_weights(source_.config, *source_.weights);
  EXPECT_EQ(w.elements, 134'515'008);  // SmolLM2-135M's published parameter count
  EXPECT_EQ(w.elements, source_.config.parameter_count());
  // The file holds exactly the model's weights: the summary accounts for every tensor and byte of it.
  const auto file = GgufFile::open(path_);
  uint64_t file_bytes = 0;
  for (const GgufTensorInfo& t : file->tensors()) file_bytes += t.nbytes;
  EXPECT_EQ(w.tensors, static_cast<int64_t>(file->tensors().size()));
  EXPECT_EQ(w.stored_bytes, file_bytes);
  uint64_t by_type = 0;
  for (const StorageTypeTotal& t : w.by_type) by_type += t.stored_bytes;
  EXPECT_EQ(by_type, w.stored_bytes);
  EXPECT_GT(w.by_type.size(), 1u);  // quantized matrices and F32 norms
}

TEST_F(SmolLm2Summary, RankTotalsCoverTheFileOnceExceptReplicas) {
  const ModelConfig& c = source_.config;
  const uint64_t embedding = source_.weights->info({WeightKind::kTokenEmbedding}).stored_bytes;
  const uint64_t total = summarize_weights(c, *source_.weights).stored_bytes;
  uint64_t norms = source_.weights->info({WeightKind::kOutputNorm}).stored_bytes;
  for (int layer = 0; layer < c.num_layers; ++layer) {
    norms += source_.weights->info({WeightKind::kAttnNorm, layer}).stored_bytes +
             source_.weights->info({WeightKind::kFfnNorm, layer}).stored_bytes;
  }
  const int64_t norm_elements = int64_t{2 * c.num_layers + 1} * c.hidden_size;
  const int64_t vocab_rows = int64_t{c.vocab_size} * c.hidden_size;
  // tp=3 splits the 3 KV heads (nothing replicated) and every slice falls on quantization-block boundaries, so the
  // ranks together read the file exactly once, except what is replicated: the embedding again as the last stage's
  // (tied) LM head, and the norm vectors, which every rank of a TP group holds whole.
  // Moving layers between stages (--pp-layers) changes who holds what, not the totals.
  for (ParallelLayout layout : {ParallelLayout{1, 1}, ParallelLayout{3, 1}, ParallelLayout{3, 2}, ParallelLayout{1, 7},
                                ParallelLayout{1, 2, {19, 11}}, ParallelLayout{3, 2, {19, 11}}}) {
    SCOPED_TRACE(layout.to_string());
    uint64_t stored = 0, held = 0;
    for (const RankFootprint& r : plan_rank_footprints(c, *source_.weights, layout)) {
      stored += r.stored_bytes;
      held += r.held_bytes;
    }
    const auto extra_tp = static_cast<uint64_t>(layout.tp - 1);
    EXPECT_EQ(stored, total + embedding + extra_tp * norms);
    EXPECT_EQ(held, static_cast<uint64_t>(c.parameter_count() + vocab_rows) * 4 +
                        extra_tp * static_cast<uint64_t>(norm_elements) * 4);
  }
}

TEST_F(SmolLm2Summary, FirstAndLastRankFootprintsEqualLoadedWeights) {
  for (kernels::cpu::WeightFormat format : kFormats) {
    SCOPED_TRACE(kernels::cpu::weight_format_name(format));
    const auto ranks = plan_rank_footprints(source_.config, *source_.weights, {3, 2}, format);
    ASSERT_EQ(ranks.size(), 6u);
    for (const RankFootprint& r : {ranks.front(), ranks.back()}) {
      SCOPED_TRACE("rank " + std::to_string(r.rank));
      const StageWeights loaded = load_stage_weights(*source_.weights, source_.config, r.shard, r.layers,
                                                     r.first_stage, r.last_stage, format);
      EXPECT_EQ(r.held_bytes, loaded.bytes());
    }
  }
}

}  // namespace
}  // namespace tessera::runtime
