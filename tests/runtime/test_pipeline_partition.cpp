// --pp-layers (runtime/model/pipeline_partition.h): parsing and every error it reports, the decode cost model of
// `auto` on SmolLM2-135M's and Llama-3-70B's shapes (worked out by hand below), the balancing against a brute-force
// search, and the resolution of a command's flags against a model.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "parallel/topology.h"
#include "runtime/model/model_presets.h"
#include "runtime/model/model_source.h"
#include "runtime/model/model_summary.h"
#include "runtime/model/pipeline_partition.h"
#include "tests/support/error_text.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

using Mode = PipelineLayers::Mode;
using testing::error_of;

ModelConfig preset(const char* name) {
  auto config = model_preset(name);
  EXPECT_TRUE(config.has_value()) << name;
  return config.value_or(ModelConfig{});
}

TEST(ParsePipelineLayers, EmptyIsBalancedAutoIsAutoCountsAreCounts) {
  EXPECT_EQ(parse_pipeline_layers("", 2).mode, Mode::kBalanced);
  EXPECT_EQ(parse_pipeline_layers("  ", 2).mode, Mode::kBalanced);
  EXPECT_EQ(parse_pipeline_layers("auto", 2).mode, Mode::kAuto);
  EXPECT_EQ(parse_pipeline_layers(" auto ", 1).mode, Mode::kAuto);
  const PipelineLayers counts = parse_pipeline_layers("19,11", 2);
  EXPECT_EQ(counts.mode, Mode::kCounts);
  EXPECT_EQ(counts.counts, (std::vector<int>{19, 11}));
  EXPECT_EQ(parse_pipeline_layers(" 1 , 5,2 ", 3).counts, (std::vector<int>{1, 5, 2}));
  EXPECT_EQ(parse_pipeline_layers("30", 1).counts, (std::vector<int>{30}));
}

TEST(ParsePipelineLayers, EveryMalformedValueNamesTheFlagAndTheValue) {
  const auto parse = [](const std::string& text, int pp) { return error_of([&] { parse_pipeline_layers(text, pp); }); };
  const std::string syntax = " is not a layer count (give pp=2 integers >= 1 separated by commas, such as 19,11, or auto)";
  EXPECT_EQ(parse("19,x", 2), "--pp-layers '19,x': 'x'" + syntax);
  EXPECT_EQ(parse("19,", 2), "--pp-layers '19,': ''" + syntax);
  EXPECT_EQ(parse(",11", 2), "--pp-layers ',11': ''" + syntax);
  EXPECT_EQ(parse("19;11", 2), "--pp-layers '19;11': '19;11'" + syntax);
  EXPECT_EQ(parse("19.5,11", 2), "--pp-layers '19.5,11': '19.5'" + syntax);
  EXPECT_EQ(parse("1e3,11", 2), "--pp-layers '1e3,11': '1e3'" + syntax);
  EXPECT_EQ(parse("AUTO", 2), "--pp-layers 'AUTO': 'AUTO'" + syntax);
  EXPECT_EQ(parse("99999999999,1", 2), "--pp-layers '99999999999,1': '99999999999'" + syntax);
  // Well-formed numbers that cannot be a partition of pp stages (the model's layers are checked later).
  EXPECT_EQ(parse("30", 2), "--pp-layers 30: 1 layer count for pp=2 pipeline stages (give exactly 2, one per stage, "
                            "or auto)");
  EXPECT_EQ(parse("10,10,10", 2), "--pp-layers 10,10,10: 3 layer counts for pp=2 pipeline stages (give exactly 2, one "
                                  "per stage, or auto)");
  EXPECT_EQ(parse("19,0", 2), "--pp-layers 19,0: stage 1 has 0 layers; every stage needs at least one layer");
  EXPECT_EQ(parse("-1,31", 2), "--pp-layers -1,31: stage 0 has -1 layers; every stage needs at least one layer");
  EXPECT_EQ(parse("auto", 0), "pipeline-parallel size must be >= 1, got pp=0");
  EXPECT_EQ(parse("", 0), "");  // no flag: the layout's own checks report pp=0
}

// SmolLM2-135M: hidden 576, 9 heads / 3 KV heads of 64, FFN 1536, vocab 49152 (tied).
TEST(PipelineCost, SmolLm2LayerAndHeadByHand) {
  const ModelConfig c = preset("smollm2-135m");
  // q 576x576, k and v 192x576 each, o 576x576, gate, up 1536x576 and down 576x1536.
  const int64_t layer = 576 * 576 + 2 * 192 * 576 + 576 * 576 + 3 * 1536 * 576;
  EXPECT_EQ(layer, 3'538'944);
  EXPECT_EQ(layer_decode_cost(c, 1), layer);
  EXPECT_EQ(lm_head_decode_cost(c, 1), 49152 * 576);
  EXPECT_EQ(lm_head_decode_cost(c, 1), 8 * layer);  // the head costs eight layers
  // tp=3: a third of everything (3 query heads, 1 KV head, 512 of the FFN, 16384 vocabulary rows per rank).
  EXPECT_EQ(layer_decode_cost(c, 3), layer / 3);
  EXPECT_EQ(lm_head_decode_cost(c, 3), 16384 * 576);
  EXPECT_EQ(stage_decode_costs(c, {1, 2}), (std::vector<int64_t>{15 * layer, 23 * layer}));
  EXPECT_EQ(stage_decode_costs(c, {1, 2, {19, 11}}), (std::vector<int64_t>{19 * layer, 19 * layer}));
  EXPECT_EQ(stage_decode_costs(c, {1, 1}), (std::vector<int64_t>{38 * layer}));
  EXPECT_NE(error_of([&] { layer_decode_cost(c, 2); }).find("tp=2 does not divide the model's 9 attention heads"),
            std::string::npos);
}

TEST(PipelineBalance, SmolLm2MovesLayersToEarlierStages) {
  const ModelConfig c = preset("smollm2-135m");
  // 30 layers + a head of 8: 38 layers' worth. pp=2: 19 | 11 + 8.
  EXPECT_EQ(balance_pipeline_layers(c, 1, 2), (std::vector<int>{19, 11}));
  EXPECT_EQ(balance_pipeline_layers(c, 3, 2), (std::vector<int>{19, 11}));  // tp scales layers and head alike
  // pp=3: nothing beats 13 (12 + 12 + 6 + 8 > 13); of the splits within 13, 13 | 13 | 4 + 8 and 13 | 12 | 5 + 8
  // are equally even, and the earlier stages keep the layers.
  EXPECT_EQ(balance_pipeline_layers(c, 1, 3), (std::vector<int>{13, 13, 4}));
  // pp=4: 38 / 4 = 9.5, so nothing beats 10: 10 | 10 | 9 | 1 + 8 (as even as 10 | 9 | 9 | 2 + 8; the earlier stages
  // keep the layers).
  EXPECT_EQ(balance_pipeline_layers(c, 1, 4), (std::vector<int>{10, 10, 9, 1}));
  EXPECT_EQ(balance_pipeline_layers(c, 1, 1), (std::vector<int>{30}));
  EXPECT_EQ(balance_pipeline_layers(c, 1, 30), std::vector<int>(30, 1));
  EXPECT_NE(error_of([&] { balance_pipeline_layers(c, 1, 31); }).find("cannot split 30 layers over pp=31"),
            std::string::npos);
}

// Llama-3-70B: 80 layers, hidden 8192, 64 heads / 8 KV heads of 128, FFN 28672, vocab 128256 (untied).
TEST(PipelineBalance, Llama70bShapes) {
  const ModelConfig c = preset("llama3-70b");
  const int64_t layer = int64_t{8192} * (8192 + 2 * 1024) + int64_t{8192} * 8192 + int64_t{3} * 8192 * 28672;
  EXPECT_EQ(layer_decode_cost(c, 1), layer);
  EXPECT_EQ(lm_head_decode_cost(c, 1), int64_t{128256} * 8192);  // 1.23 layers
  EXPECT_EQ(layer_decode_cost(c, 8), layer / 8);
  EXPECT_EQ(lm_head_decode_cost(c, 8), int64_t{16032} * 8192);
  // pp=2: 41 | 39 + 1.23 (40 | 40 + 1.23 is worse). pp=4: no stage under 21; the most even within 21.
  EXPECT_EQ(balance_pipeline_layers(c, 8, 2), (std::vector<int>{41, 39}));
  EXPECT_EQ(balance_pipeline_layers(c, 8, 4), (std::vector<int>{21, 20, 20, 19}));
  EXPECT_EQ(balance_pipeline_layers(c, 1, 4), (std::vector<int>{21, 20, 20, 19}));
  // pp=8: 81.23 / 8 = 10.15 -> 11 at most; the head's stage takes fewer layers.
  const std::vector<int> eight = balance_pipeline_layers(c, 8, 8);
  EXPECT_EQ(std::accumulate(eight.begin(), eight.end(), 0), 80);
  EXPECT_LT(eight.back(), 10);
  const std::vector<int64_t> costs = stage_decode_costs(c, {8, 8, eight});
  EXPECT_EQ(*std::max_element(costs.begin(), costs.end()), 11 * layer_decode_cost(c, 8));
}

// The largest stage cost of the best contiguous split, by trying every split.
int64_t brute_force_best(const ModelConfig& c, int tp, int pp) {
  int64_t best = std::numeric_limits<int64_t>::max();
  std::vector<int> counts;
  std::function<void(int)> split = [&](int left) {
    if (static_cast<int>(counts.size()) == pp - 1) {
      if (left < 1) return;
      counts.push_back(left);
      const std::vector<int64_t> costs = stage_decode_costs(c, {tp, pp, counts});
      best = std::min(best, *std::max_element(costs.begin(), costs.end()));
      counts.pop_back();
      return;
    }
    for (int n = 1; n <= left - (pp - 1 - static_cast<int>(counts.size())); ++n) {
      counts.push_back(n);
      split(left - n);
      counts.pop_back();
    }
  };
  split(c.num_layers);
  return best;
}

TEST(PipelineBalance, MinimizesTheLargestStageCostLikeABruteForceSearch) {
  ModelConfig c = preset("tiny");  // hidden 128, 4 heads / 2 KV heads of 32, FFN 256: a layer is 147456 weights
  for (int layers : {1, 2, 5, 7, 12}) {
    for (int vocab : {16, 512, 1152, 4096, 20000}) {  // a head from ~0 to ~17 layers' worth
      c.num_layers = layers;
      c.vocab_size = vocab;
      for (int pp = 1; pp <= std::min(layers, 5); ++pp) {
        SCOPED_TRACE(concat(layers, " layers, vocab ", vocab, ", pp=", pp));
        const std::vector<int> counts = balance_pipeline_layers(c, 1, pp);
        ASSERT_EQ(static_cast<int>(counts.size()), pp);
        EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), 0), layers);
        EXPECT_GE(*std::min_element(counts.begin(), counts.end()), 1);
        const std::vector<int64_t> costs = stage_decode_costs(c, {1, pp, counts});
        EXPECT_EQ(*std::max_element(costs.begin(), costs.end()), brute_force_best(c, 1, pp));
        // The head never makes the last stage hold more layers than the balanced split gives it.
        EXPECT_LE(counts.back(), parallel::stage_layers(layers, pp, pp - 1).size());
      }
    }
  }
}

TEST(ResolvePipelineLayout, BalancedCountsAndAutoAgainstTheModel) {
  const ModelConfig c = preset("smollm2-135m");
  EXPECT_TRUE(resolve_pipeline_layout(c, 3, 2, parse_pipeline_layers("", 2)).stage_layer_counts.empty());
  const parallel::ParallelLayout counts = resolve_pipeline_layout(c, 3, 2, parse_pipeline_layers("20,10", 2));
  EXPECT_EQ(counts.to_string(), "tp=3 pp=2 layers=20,10");
  EXPECT_EQ(resolve_pipeline_layout(c, 1, 2, parse_pipeline_layers("auto", 2)).to_string(), "tp=1 pp=2 layers=19,11");
  EXPECT_EQ(error_of([&] { resolve_pipeline_layout(c, 1, 2, parse_pipeline_layers("19,12", 2)); }),
            "--pp-layers 19,12: the counts sum to 31 layers but the model has 30 (give 2 counts >= 1 that sum to 30, "
            "or auto)");
  EXPECT_EQ(error_of([&] { resolve_pipeline_layout(c, 1, 2, parse_pipeline_layers("1,1", 2)); }),
            "--pp-layers 1,1: the counts sum to 2 layers but the model has 30 (give 2 counts >= 1 that sum to 30, "
            "or auto)");
}

TEST(ResolvePipelineLayout, ReadsTheModelOnlyWhenTheFlagIsGiven) {
  // No flag: the model is not opened (a missing file is the replica's to report, as without --pp-layers).
  EXPECT_EQ(resolve_pipeline_layout("/nonexistent/model.gguf", 3, 2, "").to_string(), "tp=3 pp=2");
  EXPECT_NE(error_of([] { resolve_pipeline_layout("/nonexistent/model.gguf", 1, 2, "auto"); }).find("does not exist"),
            std::string::npos);
  EXPECT_EQ(resolve_pipeline_layout("dummy:smollm2-135m", 1, 2, "auto").stage_layer_counts,
            (std::vector<int>{19, 11}));
  EXPECT_EQ(resolve_pipeline_layout("dummy:llama3-70b", 8, 2, "auto").stage_layer_counts, (std::vector<int>{41, 39}));
  const std::filesystem::path tiny = testing::fixture("tiny-models/tiny-qwen2");  // 4 layers
  EXPECT_EQ(resolve_pipeline_layout(tiny, 3, 2, "3,1").stage_layer_counts, (std::vector<int>{3, 1}));
  EXPECT_NE(error_of([&] { resolve_pipeline_layout(tiny, 1, 2, "3,2"); })
                .find("--pp-layers 3,2: the counts sum to 5 layers but the model has 4"),
            std::string::npos);
  // Malformed values fail before the model is read.
  EXPECT_NE(error_of([] { resolve_pipeline_layout("/nonexistent/model.gguf", 1, 2, "3,x"); }).find("'x'"),
            std::string::npos);
}

// The layers a partition puts on each rank are what inspect and the engine load.
TEST(ResolvePipelineLayout, FootprintsFollowThePartition) {
  const ModelSource source = open_model_source("dummy:smollm2-135m");
  const parallel::ParallelLayout layout = resolve_pipeline_layout(source.config, 3, 2, parse_pipeline_layers("auto", 2));
  const std::vector<RankFootprint> ranks =
      plan_rank_footprints(source.config, *source.weights, layout, kernels::cpu::WeightFormat::kBF16);
  ASSERT_EQ(ranks.size(), 6u);
  for (const RankFootprint& r : ranks) {
    EXPECT_EQ(r.layers.begin, r.stage == 0 ? 0 : 19);
    EXPECT_EQ(r.layers.end, r.stage == 0 ? 19 : 30);
  }
}

}  // namespace
}  // namespace tessera::runtime
