#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numbers>

#include "kernels/base/error.h"
#include "runtime/model/model_config_gguf.h"
#include "tests/runtime/gguf_image_builder.h"
#include "tests/support/error_text.h"
#include "tests/support/model_config_expect.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

using testing::GgufImageBuilder;

std::string error_of(const GgufImageBuilder& b) {
  const auto image = b.build();
  return testing::error_of([&] { model_config_from_gguf(*GgufFile::parse(image, "config.gguf")); });
}

TEST(ModelConfigGguf, SmolLm2) {
  const auto path = testing::default_model_path();
  TESSERA_REQUIRE_MODEL(path);
  const ModelConfig c = model_config_from_gguf(*GgufFile::open(path));
  const ModelConfig want{.architecture = "llama", .name = "Smollm2 135M 8k Lc100K Mix1 Ep2", .num_layers = 30,
                         .hidden_size = 576, .num_heads = 9, .num_kv_heads = 3, .head_dim = 64,
                         .intermediate_size = 1536, .vocab_size = 49152, .max_position_embeddings = 8192,
                         .rope_theta = 100000.0f, .rope_scaling = {}, .rms_norm_eps = 1e-5f,
                         .tie_word_embeddings = true, .attention_qkv_bias = false, .bos_token_id = 1,
                         .eos_token_ids = {2}};
  EXPECT_TRUE(testing::same_config(c, want));
  EXPECT_EQ(c.parameter_count(), 134515008);  // Hugging Face's count for SmolLM2-135M
}

// The hyperparameters every decoder's GGUF carries, under its architecture's key prefix ("qwen2.block_count").
struct Hyperparameters {
  uint32_t layers, hidden, heads, ffn, context;
};

GgufImageBuilder decoder_builder(const std::string& arch, const Hyperparameters& h) {
  GgufImageBuilder b;
  b.add_string("general.architecture", arch);
  b.add_u32(arch + ".block_count", h.layers);
  b.add_u32(arch + ".embedding_length", h.hidden);
  b.add_u32(arch + ".attention.head_count", h.heads);
  b.add_u32(arch + ".feed_forward_length", h.ffn);
  b.add_u32(arch + ".context_length", h.context);
  return b;
}

GgufImageBuilder qwen2_builder() {
  GgufImageBuilder b = decoder_builder("qwen2", {.layers = 2, .hidden = 64, .heads = 4, .ffn = 128, .context = 4096});
  b.add_string("general.name", "tiny qwen");
  b.add_u32("qwen2.attention.head_count_kv", 2);
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
    GgufImageBuilder b =
        decoder_builder("llama", {.layers = 1, .hidden = 256, .heads = 2, .ffn = 512, .context = 131072});
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
  GgufImageBuilder bad_eos =
      decoder_builder("llama", {.layers = 1, .hidden = 8, .heads = 2, .ffn = 8, .context = 8});
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
