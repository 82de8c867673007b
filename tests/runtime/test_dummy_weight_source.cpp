// Dummy weights (runtime/model/dummy_weight_source.h) and model presets: real shapes, reads of any range equal to
// the same range of a full read (what tensor-parallel shards rely on), the same values from every instance, and
// the `dummy:<preset>` model path.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/model/dummy_weight_source.h"
#include "runtime/model/model_presets.h"
#include "runtime/model/model_source.h"

namespace tessera::runtime {
namespace {

ModelConfig tiny() { return *model_preset("tiny"); }

std::vector<float> full_read(const WeightSource& source, const WeightId& id) {
  const std::vector<int64_t> shape = source.info(id).shape;
  const int64_t cols = shape.size() == 2 ? shape[1] : 1;
  std::vector<float> out(static_cast<size_t>(shape[0] * cols));
  source.read_rows(id, 0, shape[0], out.data());
  return out;
}

TEST(DummyWeightSource, ShapesFollowTheConfig) {
  const ModelConfig c = tiny();
  DummyWeightSource source(c);
  EXPECT_EQ(source.info({WeightKind::kTokenEmbedding}).shape, (std::vector<int64_t>{c.vocab_size, c.hidden_size}));
  EXPECT_EQ(source.info({WeightKind::kAttnQ, 0}).shape,
            (std::vector<int64_t>{int64_t{c.num_heads} * c.head_dim, c.hidden_size}));
  EXPECT_EQ(source.info({WeightKind::kAttnK, 3}).shape,
            (std::vector<int64_t>{int64_t{c.num_kv_heads} * c.head_dim, c.hidden_size}));
  EXPECT_EQ(source.info({WeightKind::kFfnDown, 1}).shape,
            (std::vector<int64_t>{c.hidden_size, c.intermediate_size}));
  EXPECT_EQ(source.info({WeightKind::kOutputNorm}).shape, (std::vector<int64_t>{c.hidden_size}));
  EXPECT_TRUE(source.has({WeightKind::kLmHead}));
  EXPECT_FALSE(source.has({WeightKind::kAttnQ, c.num_layers}));  // past the last layer
  EXPECT_FALSE(source.has({WeightKind::kAttnQBias, 0}));         // no QKV bias in a Llama
  EXPECT_THROW(source.info({WeightKind::kAttnQ, c.num_layers}), Error);
}

TEST(DummyWeightSource, RowAndColumnRangesMatchAFullRead) {
  DummyWeightSource source(tiny());
  for (const WeightId id : {WeightId{WeightKind::kAttnQ, 2}, WeightId{WeightKind::kFfnDown, 0},
                            WeightId{WeightKind::kTokenEmbedding}, WeightId{WeightKind::kAttnNorm, 1}}) {
    SCOPED_TRACE(to_string(id));
    const std::vector<float> full = full_read(source, id);
    const std::vector<int64_t> shape = source.info(id).shape;
    const int64_t rows = shape[0], cols = shape.size() == 2 ? shape[1] : 1;
    std::vector<float> part(static_cast<size_t>(rows * cols));
    const int64_t r0 = rows / 3, r1 = rows - rows / 5;
    source.read_rows(id, r0, r1, part.data());
    for (int64_t i = 0; i < (r1 - r0) * cols; ++i) ASSERT_EQ(part[i], full[r0 * cols + i]) << "row read, element " << i;
    if (shape.size() != 2) continue;
    const int64_t c0 = cols / 4, c1 = cols / 2 + 3;
    source.read_columns(id, c0, c1, part.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = c0; c < c1; ++c) {
        ASSERT_EQ(part[r * (c1 - c0) + (c - c0)], full[r * cols + c]) << "column read, row " << r << " column " << c;
      }
    }
  }
}

TEST(DummyWeightSource, ValuesAreDeterministicAndScaledByFanIn) {
  const ModelConfig c = tiny();
  DummyWeightSource a(c), b(c), other_seed(c, 7);
  const WeightId gate{WeightKind::kFfnGate, 1};
  const std::vector<float> va = full_read(a, gate);
  EXPECT_EQ(va, full_read(b, gate));
  EXPECT_NE(va, full_read(other_seed, gate));
  EXPECT_NE(va, full_read(a, WeightId{WeightKind::kFfnUp, 1}));  // each weight its own stream
  EXPECT_NE(va, full_read(a, WeightId{WeightKind::kFfnGate, 2}));
  double sum = 0, sum_sq = 0;
  for (float v : va) {
    sum += static_cast<double>(v);
    sum_sq += static_cast<double>(v) * static_cast<double>(v);
  }
  const double n = static_cast<double>(va.size());
  const double mean = sum / n, std_dev = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(std_dev, 1.0 / std::sqrt(static_cast<double>(c.hidden_size)), 0.05 / std::sqrt(c.hidden_size));
  EXPECT_NEAR(mean, 0.0, 0.01);
  for (float v : full_read(a, WeightId{WeightKind::kOutputNorm})) {
    EXPECT_GE(v, 0.9f);
    EXPECT_LE(v, 1.1f);
  }
}

TEST(ModelPresets, PublishedShapes) {
  const ModelConfig l8 = *model_preset("llama3-8b");
  EXPECT_EQ(l8.num_layers, 32);
  EXPECT_EQ(l8.head_dim, 128);
  EXPECT_EQ(l8.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_NEAR(static_cast<double>(l8.parameter_count()) / 1e9, 8.03, 0.01);  // Llama 3 8B: 8.03 B parameters
  const ModelConfig l70 = *model_preset("llama3-70b");
  EXPECT_NEAR(static_cast<double>(l70.parameter_count()) / 1e9, 70.55, 0.01);  // 70.55 B
  const ModelConfig smol = *model_preset("smollm2-135m");
  EXPECT_NEAR(static_cast<double>(smol.parameter_count()) / 1e6, 134.5, 0.1);  // 134.5 M
  for (const std::string& name : model_preset_names()) EXPECT_NO_THROW(model_preset(name)->validate()) << name;
  EXPECT_FALSE(model_preset("llama3-9b").has_value());
}

TEST(ModelPresets, DummyModelPaths) {
  EXPECT_TRUE(is_dummy_model_path("dummy:tiny"));
  EXPECT_FALSE(is_dummy_model_path("/models/tiny.gguf"));
  const ModelSource source = open_model_source("dummy:tiny");
  EXPECT_EQ(source.config.hidden_size, tiny().hidden_size);
  EXPECT_EQ(source.weights->info({WeightKind::kFfnUp, 0}).shape,
            (std::vector<int64_t>{tiny().intermediate_size, tiny().hidden_size}));
  try {
    open_model_source("dummy:nope");
    FAIL() << "an unknown preset must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model preset 'nope'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("llama3-8b"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::runtime
