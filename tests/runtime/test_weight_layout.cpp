// weight_layout: which weights a config implies and their shapes, the one answer every weight reader checks
// files against and `tessera inspect` sums over.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/base/error.h"
#include "runtime/model/weight_layout.h"

namespace tessera::runtime {
namespace {

// SmolLM2-135M's shapes: 9 heads over 3 KV heads of 64, FFN 1536, tied embeddings, no biases.
ModelConfig smollm2_like() {
  return {.architecture = "llama", .name = "smollm2-like", .num_layers = 30, .hidden_size = 576, .num_heads = 9,
          .num_kv_heads = 3, .head_dim = 64, .intermediate_size = 1536, .vocab_size = 49152, .rope_scaling = {},
          .tie_word_embeddings = true, .bos_token_id = std::nullopt, .eos_token_ids = {}};
}

using Dims = std::vector<int64_t>;

TEST(WeightLayout, ShapesFollowTheConfigInPyTorchOrder) {
  const ModelConfig c = smollm2_like();
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kTokenEmbedding}), (Dims{49152, 576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kLmHead}), (Dims{49152, 576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kOutputNorm}), (Dims{576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kAttnNorm, 3}), (Dims{576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kAttnQ, 3}), (Dims{576, 576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kAttnK, 3}), (Dims{192, 576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kAttnV, 3}), (Dims{192, 576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kAttnQBias, 3}), (Dims{576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kAttnKBias, 3}), (Dims{192}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kAttnOutput, 3}), (Dims{576, 576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kFfnGate, 3}), (Dims{1536, 576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kFfnUp, 3}), (Dims{1536, 576}));
  EXPECT_EQ(expected_weight_shape(c, {WeightKind::kFfnDown, 3}), (Dims{576, 1536}));
}

TEST(WeightLayout, ImpliedWeightsFollowTiedEmbeddingsAndBiases) {
  for (const bool tied : {true, false}) {
    for (const bool bias : {false, true}) {
      ModelConfig c = smollm2_like();
      c.num_layers = 2;
      c.tie_word_embeddings = tied;
      c.attention_qkv_bias = bias;
      SCOPED_TRACE(::testing::Message() << "tied " << tied << " bias " << bias);
      EXPECT_EQ(config_implies_weight(c, {WeightKind::kLmHead}), !tied);
      EXPECT_EQ(config_implies_weight(c, {WeightKind::kAttnKBias, 1}), bias);
      EXPECT_TRUE(config_implies_weight(c, {WeightKind::kFfnDown, 1}));
      // Layers outside the model, a layer index on a model-level weight, or none on a layer weight: not implied.
      EXPECT_FALSE(config_implies_weight(c, {WeightKind::kFfnDown, 2}));
      EXPECT_FALSE(config_implies_weight(c, {WeightKind::kOutputNorm, 0}));
      EXPECT_FALSE(config_implies_weight(c, {WeightKind::kAttnQ}));

      const std::vector<WeightId> ids = model_weight_ids(c);
      const size_t per_layer = bias ? 12 : 9;
      EXPECT_EQ(ids.size(), (tied ? 2u : 3u) + 2 * per_layer);
      for (const WeightId& id : ids) EXPECT_TRUE(config_implies_weight(c, id)) << to_string(id);
      // Model-level weights first, then layer by layer.
      EXPECT_EQ(ids.front(), WeightId{WeightKind::kTokenEmbedding});
      EXPECT_EQ(ids.back(), (WeightId{WeightKind::kFfnDown, 1}));
    }
  }
}

TEST(WeightLayout, ShapeMismatchNamesFileTensorWeightAndBothShapes) {
  const ModelConfig c = smollm2_like();
  EXPECT_NO_THROW(check_weight_shape(c, {WeightKind::kAttnK, 0}, {192, 576}, "m.gguf", "blk.0.attn_k.weight"));
  try {
    check_weight_shape(c, {WeightKind::kAttnK, 0}, {576, 576}, "m.gguf", "blk.0.attn_k.weight");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "m.gguf: tensor 'blk.0.attn_k.weight' (layer 0 attn_k) has shape [576, 576] but the "
                           "model config implies [192, 576]");
  }
}

}  // namespace
}  // namespace tessera::runtime
