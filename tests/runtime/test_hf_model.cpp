// The tiny Hugging Face models of tests/fixtures/tiny-models (scripts/golden/tiny_models.py): config fields as
// the script set them, every weight readable with its config shape and torch's values, range reads equal to
// slices of full reads, sharded == unsharded, and broken directories rejected with the culprit named.
#include <gtest/gtest.h>

#include <cmath>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/error.h"
#include "runtime/model/hf_config.h"
#include "runtime/model/hf_weight_source.h"
#include "runtime/model/model_source.h"
#include "tests/support/error_text.h"
#include "tests/support/json_file.h"
#include "tests/support/model_config_expect.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::read_json;

fs::path fixtures() { return testing::fixture("tiny-models"); }

std::vector<WeightId> all_weight_ids(int layers) {
  std::vector<WeightId> ids{{WeightKind::kTokenEmbedding}, {WeightKind::kOutputNorm}, {WeightKind::kLmHead}};
  for (int layer = 0; layer < layers; ++layer) {
    for (WeightKind kind : {WeightKind::kAttnNorm, WeightKind::kAttnQ, WeightKind::kAttnK, WeightKind::kAttnV,
                            WeightKind::kAttnQBias, WeightKind::kAttnKBias, WeightKind::kAttnVBias,
                            WeightKind::kAttnOutput, WeightKind::kFfnNorm, WeightKind::kFfnGate, WeightKind::kFfnUp,
                            WeightKind::kFfnDown}) {
      ids.push_back(WeightId{kind, layer});
    }
  }
  return ids;
}

std::vector<float> read_all(const WeightSource& source, const WeightId& id) {
  const auto shape = source.info(id).shape;
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  std::vector<float> values(static_cast<size_t>(count));
  source.read_rows(id, 0, shape[0], values.data());
  return values;
}

// Temporary copy of a fixture directory that tests may break.
class ScratchDir {
 public:
  explicit ScratchDir(const fs::path& from) {
    path_ = fs::temp_directory_path() /
            ("tessera-hf-" + from.filename().string() + "-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::copy(from, path_, fs::copy_options::recursive);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string error_opening(const fs::path& directory) {
  return testing::error_of([&] { open_model_source(directory); });
}

TEST(HfModel, TinyLlamaConfigIsWhatTheScriptSet) {
  const ModelConfig config = model_config_from_hf(fixtures() / "tiny-llama-gqa");
  const RopeScaling llama3{.type = RopeScalingType::kLlama3, .factor = 8.0f, .low_freq_factor = 1.0f,
                           .high_freq_factor = 4.0f, .original_max_position_embeddings = 64};
  const ModelConfig want{.architecture = "llama", .name = "tiny-llama-gqa", .num_layers = 4, .hidden_size = 48,
                         .num_heads = 6, .num_kv_heads = 1, .head_dim = 8, .intermediate_size = 96,
                         .vocab_size = 384, .max_position_embeddings = 256, .rope_theta = 10000.0f,
                         .rope_scaling = llama3, .rms_norm_eps = 1e-5f, .tie_word_embeddings = false,
                         .attention_qkv_bias = false, .bos_token_id = 1,
                         .eos_token_ids = {2, 3}};  // config.json's 2 + generation_config's [2, 3]
  EXPECT_TRUE(testing::same_config(config, want));
}

TEST(HfModel, TinyQwen2ConfigIsWhatTheScriptSet) {
  const ModelConfig config = model_config_from_hf(fixtures() / "tiny-qwen2");
  const ModelConfig want{.architecture = "qwen2", .name = "tiny-qwen2", .num_layers = 4, .hidden_size = 48,
                         .num_heads = 6, .num_kv_heads = 3, .head_dim = 8, .intermediate_size = 96,
                         .vocab_size = 384, .max_position_embeddings = 512, .rope_theta = 1000000.0f,
                         .rope_scaling = {}, .rms_norm_eps = 1e-6f, .tie_word_embeddings = true,
                         .attention_qkv_bias = true, .bos_token_id = std::nullopt, .eos_token_ids = {4, 5}};
  EXPECT_TRUE(testing::same_config(config, want));
}

class TinyModel : public ::testing::TestWithParam<const char*> {};

TEST_P(TinyModel, EveryWeightHasItsConfigShapeAndTorchsValues) {
  const fs::path directory = fixtures() / GetParam();
  const ModelSource source = open_model_source(directory);
  // The sharded copy holds tiny-llama-gqa's weights; its golden data lives there.
  std::string golden_name = GetParam();
  if (golden_name.ends_with("-sharded")) golden_name.resize(golden_name.size() - std::string("-sharded").size());
  const json weights = read_json(fixtures() / golden_name / "golden.json")["weights"];
  const ModelConfig& config = source.config;
  int present = 0;
  for (const WeightId& id : all_weight_ids(config.num_layers)) {
    const std::string name = hf_tensor_name(id);
    SCOPED_TRACE(name);
    const bool is_bias = id.kind == WeightKind::kAttnQBias || id.kind == WeightKind::kAttnKBias ||
                         id.kind == WeightKind::kAttnVBias;
    const bool expected = is_bias ? config.attention_qkv_bias
                                  : !(id.kind == WeightKind::kLmHead && config.tie_word_embeddings);
    ASSERT_EQ(source.weights->has(id), expected);
    if (!expected) {
      EXPECT_THROW(source.weights->info(id), Error);
      continue;
    }
    ++present;
    ASSERT_TRUE(weights.contains(name));
    const WeightInfo info = source.weights->info(id);
    EXPECT_EQ(info.shape, weights[name]["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(info.storage_type, "F32");
    const std::vector<float> values = read_all(*source.weights, id);
    EXPECT_EQ(info.stored_bytes, values.size() * 4);
    double sum = 0.0;
    for (float value : values) sum += static_cast<double>(value);
    EXPECT_NEAR(sum, weights[name]["sum"].get<double>(), 1e-9 * static_cast<double>(values.size()));
    const auto first = weights[name]["first"].get<std::vector<float>>();
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(values[i], first[i]) << "element " << i;
  }
  EXPECT_EQ(static_cast<size_t>(present), weights.size());  // and nothing in the file was left unread
  EXPECT_FALSE(source.weights->has(WeightId{WeightKind::kAttnQ, config.num_layers}));
  EXPECT_FALSE(source.weights->has(WeightId{WeightKind::kAttnQ, -1}));
  EXPECT_FALSE(source.weights->has(WeightId{WeightKind::kOutputNorm, 0}));
}

TEST_P(TinyModel, RangeReadsEqualSlicesOfTheFullRead) {
  const ModelSource source = open_model_source(fixtures() / GetParam());
  for (const WeightId& id : all_weight_ids(2)) {
    if (!source.weights->has(id)) continue;
    SCOPED_TRACE(hf_tensor_name(id));
    const auto shape = source.weights->info(id).shape;
    const std::vector<float> full = read_all(*source.weights, id);
    const int64_t rows = shape[0];
    const int64_t columns = shape.size() == 2 ? shape[1] : 1;
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, rows / 3}, {rows / 3, rows}, {rows - 1, rows}}) {
      std::vector<float> part(static_cast<size_t>((end - begin) * columns));
      source.weights->read_rows(id, begin, end, part.data());
      for (size_t i = 0; i < part.size(); ++i) ASSERT_EQ(part[i], full[begin * columns + i]);
    }
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, columns / 2}, {columns / 3, columns}}) {
      const int64_t width = end - begin;
      std::vector<float> part(static_cast<size_t>(rows * width));
      source.weights->read_columns(id, begin, end, part.data());
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < width; ++c) ASSERT_EQ(part[r * width + c], full[r * columns + begin + c]);
      }
    }
    std::vector<float> scratch(static_cast<size_t>((rows + 1) * columns));
    EXPECT_THROW(source.weights->read_rows(id, 0, rows + 1, scratch.data()), Error);
    EXPECT_THROW(source.weights->read_columns(id, 0, columns + 1, scratch.data()), Error);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TinyModel,
                         ::testing::Values("tiny-llama-gqa", "tiny-llama-gqa-sharded", "tiny-qwen2"));

TEST(HfModel, ShardedEqualsUnsharded) {
  const ModelSource single = open_model_source(fixtures() / "tiny-llama-gqa");
  const ModelSource sharded = open_model_source(fixtures() / "tiny-llama-gqa-sharded");
  EXPECT_NE(single.weights->describe().find("model.safetensors"), std::string::npos);
  EXPECT_NE(sharded.weights->describe().find("2 safetensors shards"), std::string::npos)
      << sharded.weights->describe();
  for (const WeightId& id : all_weight_ids(single.config.num_layers)) {
    ASSERT_EQ(single.weights->has(id), sharded.weights->has(id));
    if (!single.weights->has(id)) continue;
    EXPECT_EQ(read_all(*single.weights, id), read_all(*sharded.weights, id)) << hf_tensor_name(id);
  }
}

TEST(HfModel, MissingShardNamesTheShardAndTheIndex) {
  ScratchDir scratch(fixtures() / "tiny-llama-gqa-sharded");
  fs::remove(scratch.path() / "model-00002-of-00002.safetensors");
  const std::string message = error_opening(scratch.path());
  EXPECT_NE(message.find("model-00002-of-00002.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos) << message;
}

TEST(HfModel, IndexPointingAtTheWrongShardIsAnError) {
  ScratchDir scratch(fixtures() / "tiny-llama-gqa-sharded");
  json index = read_json(scratch.path() / "model.safetensors.index.json");
  index["weight_map"]["lm_head.weight"] = "model-00001-of-00002.safetensors";
  std::ofstream(scratch.path() / "model.safetensors.index.json") << index.dump();
  const std::string message = error_opening(scratch.path());
  EXPECT_NE(message.find("lm_head.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("does not hold it"), std::string::npos) << message;

  index["weight_map"]["lm_head.weight"] = "../tiny-qwen2/model.safetensors";
  std::ofstream(scratch.path() / "model.safetensors.index.json") << index.dump();
  EXPECT_NE(error_opening(scratch.path()).find("not a file name"), std::string::npos);
}

TEST(HfModel, ConfigThatDisagreesWithTheWeightsNamesTheTensor) {
  ScratchDir scratch(fixtures() / "tiny-llama-gqa");
  json config = read_json(scratch.path() / "config.json");
  config["intermediate_size"] = 64;
  std::ofstream(scratch.path() / "config.json") << config.dump();
  const std::string message = error_opening(scratch.path());
  EXPECT_NE(message.find("model.layers.0.mlp."), std::string::npos) << message;
  EXPECT_NE(message.find("[96, 48]"), std::string::npos) << message;
}

TEST(HfModel, MissingTensorIsNamed) {
  ScratchDir scratch(fixtures() / "tiny-qwen2");
  json config = read_json(scratch.path() / "config.json");
  config["tie_word_embeddings"] = false;  // now lm_head.weight is required, and the file has none
  std::ofstream(scratch.path() / "config.json") << config.dump();
  const std::string message = error_opening(scratch.path());
  EXPECT_NE(message.find("lm_head.weight"), std::string::npos) << message;
}

TEST(HfModel, OpenModelSourceDispatchesAndNamesBadPaths) {
  const std::string missing = error_opening("/nonexistent/tessera/model");
  EXPECT_NE(missing.find("/nonexistent/tessera/model"), std::string::npos) << missing;
  const std::string not_a_model = error_opening(fixtures() / "dtypes.json");
  EXPECT_NE(not_a_model.find("dtypes.json"), std::string::npos) << not_a_model;
  const std::string no_config = error_opening(fixtures());
  EXPECT_NE(no_config.find("config.json"), std::string::npos) << no_config;
}

TEST(HfModel, OpenModelSourceOpensAGgufFileToo) {
  const fs::path path = testing::default_model_path();
  TESSERA_REQUIRE_MODEL(path);
  const ModelSource source = open_model_source(path);
  EXPECT_EQ(source.config.architecture, "llama");
  EXPECT_EQ(source.config.num_layers, 30);
  EXPECT_TRUE(source.weights->has(WeightId{WeightKind::kAttnQ, 29}));
}

}  // namespace
}  // namespace tessera::runtime
