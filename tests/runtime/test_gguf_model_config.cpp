#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numbers>

#include "kernels/base/error.h"
#include "runtime/model/model_config_gguf.h"
#include "tests/runtime/gguf_image_builder.h"

namespace tessera::runtime {
namespace {

using testing::GgufImageBuilder;

std::filesystem::path model_path() {
  if (const char* env = std::getenv("TESSERA_MODEL_PATH")) return env;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : "/root") / ".cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

std::string error_of(const GgufImageBuilder& b) {
  const auto image = b.build();
  try {
    model_config_from_gguf(*GgufFile::parse(image, "config.gguf"));
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(ModelConfigGguf, SmolLm2) {
  const auto path = model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model file " << path << " is absent (set TESSERA_MODEL_PATH)";
  const ModelConfig c = model_config_from_gguf(*GgufFile::open(path));
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.name, "Smollm2 135M 8k Lc100K Mix1 Ep2");
  EXPECT_EQ(c.num_layers, 30);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.num_heads, 9);
  EXPECT_EQ(c.num_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_EQ(c.rope_theta, 100000.0f);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_qkv_bias);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{2}));
  EXPECT_EQ(c.parameter_count(), 134515008);  // Hugging Face's count for SmolLM2-135M
}

GgufImageBuilder qwen2_builder() {
  GgufImageBuilder b;
  b.add_string("general.architecture", "qwen2");
  b.add_string("general.name", "tiny qwen");
  b.add_u32("qwen2.block_count", 2);
  b.add_u32("qwen2.embedding_length", 64);
  b.add_u32("qwen2.attention.head_count", 4);
  b.add_u32("qwen2.attention.head_count_kv", 2);
  b.add_u32("qwen2.feed_forward_length", 128);
  b.add_u32("qwen2.context_length", 4096);
  b.add_f32("qwen2.rope.freq_base", 1000000.0f);
  b.add_f32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
  b.add_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "<|endoftext|>", "<|im_end|>"});
  b.add_u32("tokenizer.ggml.eos_token_id", 3);
  b.add_u32("tokenizer.ggml.eot_token_id", 4);
  b.add_i32("tokenizer.ggml.bos_token_id", -1);
  return b;
}

TEST(ModelConfigGguf, Qwen2WithLinearScaling) {
  GgufImageBuilder b = qwen2_builder();
  b.add_string("qwen2.rope.scaling.type", "linear");
  b.add_f32("qwen2.rope.scaling.factor", 4.0f);
  const auto image = b.build();
  const ModelConfig c = model_config_from_gguf(*GgufFile::parse(image, "qwen.gguf"));
  EXPECT_EQ(c.architecture, "qwen2");
  EXPECT_EQ(c.name, "tiny qwen");
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.vocab_size, 5);
  EXPECT_TRUE(c.attention_qkv_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_theta, 1e6f);
  EXPECT_EQ(c.rms_norm_eps, 1e-6f);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_EQ(c.rope_scaling.factor, 4.0f);
  EXPECT_EQ(c.bos_token_id, std::nullopt);  // -1: none
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{3, 4}));
  // 5*64 embedding (tied) + 2 * (2*64 norms + 64*(64+32+32) QKV + 128 biases + 64*64 out + 3*64*128) + 64
  EXPECT_EQ(c.parameter_count(), 5 * 64 + 2 * (128 + 64 * 128 + 128 + 64 * 64 + 3 * 64 * 128) + 64);
}

// Llama 3's rope scaling arrives as rope_freqs.weight; the factors below are computed the way llama.cpp's
// converter computes them (float32 frequencies, as torch does there).
TEST(ModelConfigGguf, Llama3RopeFactors) {
  auto build = [](bool corrupt) {
    GgufImageBuilder b;
    b.add_string("general.architecture", "llama");
    b.add_u32("llama.block_count", 1);
    b.add_u32("llama.embedding_length", 256);
    b.add_u32("llama.attention.head_count", 2);
    b.add_u32("llama.feed_forward_length", 512);
    b.add_u32("llama.context_length", 131072);
    b.add_f32("llama.rope.freq_base", 500000.0f);
    b.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
    const int dim = 128;
    std::vector<float> factors;
    for (int i = 0; i < dim; i += 2) {
      const float freq = 1.0f / std::pow(500000.0f, static_cast<float>(i) / dim);
      const double wavelen = 2.0 * std::numbers::pi / static_cast<double>(freq);
      if (wavelen < 8192.0 / 4.0) {
        factors.push_back(1.0f);
      } else if (wavelen > 8192.0) {
        factors.push_back(8.0f);
      } else {
        const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
        factors.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / 8.0 + smooth)));
      }
    }
    if (corrupt) factors[2] = 1.5f;  // a high frequency, which Llama 3 leaves unscaled
    b.add_tensor("rope_freqs.weight", {64}, 0, testing::as_bytes_vector(factors));
    return b;
  };
  const auto image = build(false).build();
  const ModelConfig c = model_config_from_gguf(*GgufFile::parse(image, "llama3.gguf"));
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.num_kv_heads, 2);  // head_count_kv absent: same as heads
  EXPECT_FALSE(c.attention_qkv_bias);
  EXPECT_NE(error_of(build(true)).find("rope_freqs.weight[2]"), std::string::npos);
}

TEST(ModelConfigGguf, ErrorsNameTheKey) {
  GgufImageBuilder no_arch;
  EXPECT_NE(error_of(no_arch).find("general.architecture"), std::string::npos);
  GgufImageBuilder gemma;
  gemma.add_string("general.architecture", "gemma");
  EXPECT_NE(error_of(gemma).find("'gemma' is not supported"), std::string::npos);
  GgufImageBuilder missing;
  missing.add_string("general.architecture", "qwen2");
  missing.add_u32("qwen2.block_count", 2);
  EXPECT_NE(error_of(missing).find("qwen2.embedding_length"), std::string::npos);
  GgufImageBuilder uneven = qwen2_builder();
  uneven.add_u32("qwen2.attention.key_length", 16);
  uneven.add_u32("qwen2.attention.value_length", 8);
  EXPECT_NE(error_of(uneven).find("value_length"), std::string::npos);
  GgufImageBuilder yarn = qwen2_builder();
  yarn.add_string("qwen2.rope.scaling.type", "yarn");
  EXPECT_NE(error_of(yarn).find("'yarn' is not supported"), std::string::npos);
  GgufImageBuilder bad_eos;
  bad_eos.add_string("general.architecture", "llama");
  bad_eos.add_u32("llama.block_count", 1);
  bad_eos.add_u32("llama.embedding_length", 8);
  bad_eos.add_u32("llama.attention.head_count", 2);
  bad_eos.add_u32("llama.feed_forward_length", 8);
  bad_eos.add_u32("llama.context_length", 8);
  bad_eos.add_string_array("tokenizer.ggml.tokens", {"a"});
  bad_eos.add_u32("tokenizer.ggml.eos_token_id", 7);
  EXPECT_NE(error_of(bad_eos).find("eos_token_id = 7"), std::string::npos);
}

TEST(ModelConfig, ValidateNamesTheField) {
  ModelConfig c;
  c.architecture = "llama";
  c.num_layers = 2;
  c.hidden_size = 64;
  c.num_heads = 4;
  c.num_kv_heads = 3;
  c.head_dim = 16;
  c.intermediate_size = 128;
  c.vocab_size = 10;
  c.max_position_embeddings = 128;
  try {
    c.validate();
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_kv_heads 3"), std::string::npos) << e.what();
  }
  c.num_kv_heads = 2;
  EXPECT_NO_THROW(c.validate());
  c.eos_token_ids = {10};
  EXPECT_THROW(c.validate(), Error);
  c.eos_token_ids = {9};
  c.head_dim = 15;
  EXPECT_THROW(c.validate(), Error);
  c.head_dim = 16;
  c.rope_scaling.type = RopeScalingType::kLinear;
  c.rope_scaling.factor = 0.0f;
  EXPECT_THROW(c.validate(), Error);
}

}  // namespace
}  // namespace tessera::runtime
