// Hugging Face config.json -> ModelConfig: defaults, both RoPE spellings, eos lists, and the configs Tessera
// must refuse (unknown architectures, features it would compute wrong).
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "kernels/base/error.h"
#include "runtime/model/hf_config.h"

namespace tessera::runtime {
namespace {

using nlohmann::json;

json llama_base() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2})");
}

std::string error_of(const json& config, const json* generation = nullptr) {
  try {
    model_config_from_hf_json(config, generation, "cfg/config.json");
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(HfConfig, LlamaDefaults) {
  const ModelConfig config = model_config_from_hf_json(llama_base(), nullptr, "cfg/config.json");
  EXPECT_EQ(config.architecture, "llama");
  EXPECT_EQ(config.hidden_size, 64);
  EXPECT_EQ(config.num_layers, 2);
  EXPECT_EQ(config.num_heads, 4);
  EXPECT_EQ(config.num_kv_heads, 4);  // defaults to the head count
  EXPECT_EQ(config.head_dim, 16);     // defaults to hidden / heads
  EXPECT_EQ(config.intermediate_size, 128);
  EXPECT_EQ(config.vocab_size, 100);
  EXPECT_EQ(config.max_position_embeddings, 512);
  EXPECT_FLOAT_EQ(config.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(config.rope_theta, 10000.0f);
  EXPECT_EQ(config.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_FALSE(config.tie_word_embeddings);
  EXPECT_FALSE(config.attention_qkv_bias);
  EXPECT_EQ(config.bos_token_id, 1);
  EXPECT_EQ(config.eos_token_ids, std::vector<int>{2});
}

TEST(HfConfig, ExplicitFieldsAndNulls) {
  json config = llama_base();
  config["num_key_value_heads"] = 2;
  config["head_dim"] = 32;
  config["tie_word_embeddings"] = true;
  config["rope_theta"] = 500000.0;
  config["bos_token_id"] = nullptr;
  config["eos_token_id"] = json::array({7, 8});
  config["rope_scaling"] = nullptr;
  const ModelConfig parsed = model_config_from_hf_json(config, nullptr, "x");
  EXPECT_EQ(parsed.num_kv_heads, 2);
  EXPECT_EQ(parsed.head_dim, 32);
  EXPECT_TRUE(parsed.tie_word_embeddings);
  EXPECT_FLOAT_EQ(parsed.rope_theta, 500000.0f);
  EXPECT_FALSE(parsed.bos_token_id.has_value());
  EXPECT_EQ(parsed.eos_token_ids, (std::vector<int>{7, 8}));
}

TEST(HfConfig, GenerationConfigAddsEosIds) {
  json config = llama_base();
  config["bos_token_id"] = nullptr;
  const json generation = json::parse(R"({"bos_token_id": 5, "eos_token_id": [9, 2, 11]})");
  const ModelConfig parsed = model_config_from_hf_json(config, &generation, "x");
  EXPECT_EQ(parsed.eos_token_ids, (std::vector<int>{2, 9, 11}));
  EXPECT_EQ(parsed.bos_token_id, 5);
}

TEST(HfConfig, RopeScalingSpellings) {
  json old_style = llama_base();  // transformers < 5, Llama 3.1 style
  old_style["rope_theta"] = 500000.0;
  old_style["rope_scaling"] = json::parse(R"({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  ModelConfig parsed = model_config_from_hf_json(old_style, nullptr, "x");
  EXPECT_EQ(parsed.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_FLOAT_EQ(parsed.rope_scaling.factor, 8.0f);
  EXPECT_FLOAT_EQ(parsed.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(parsed.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(parsed.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_FLOAT_EQ(parsed.rope_theta, 500000.0f);

  json older = llama_base();  // "type" instead of "rope_type"
  older["rope_scaling"] = json::parse(R"({"type": "linear", "factor": 2.0})");
  parsed = model_config_from_hf_json(older, nullptr, "x");
  EXPECT_EQ(parsed.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_FLOAT_EQ(parsed.rope_scaling.factor, 2.0f);

  json v5 = llama_base();  // transformers >= 5: theta inside rope_parameters
  v5["rope_parameters"] = json::parse(R"({"rope_type": "default", "rope_theta": 1000000.0})");
  parsed = model_config_from_hf_json(v5, nullptr, "x");
  EXPECT_EQ(parsed.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_FLOAT_EQ(parsed.rope_theta, 1000000.0f);

  json yarn = llama_base();
  yarn["rope_scaling"] = json::parse(R"({"type": "yarn", "factor": 4.0})");
  EXPECT_NE(error_of(yarn).find("yarn"), std::string::npos);
  json incomplete = llama_base();
  incomplete["rope_scaling"] = json::parse(R"({"rope_type": "llama3", "factor": 8.0})");
  EXPECT_NE(error_of(incomplete).find("low_freq_factor"), std::string::npos);
}

TEST(HfConfig, Qwen2HasQkvBiasAndMistralCapsContextAtItsWindow) {
  json qwen = llama_base();
  qwen["architectures"] = json::array({"Qwen2ForCausalLM"});
  qwen["use_sliding_window"] = false;
  qwen["sliding_window"] = 4096;
  EXPECT_TRUE(model_config_from_hf_json(qwen, nullptr, "x").attention_qkv_bias);
  EXPECT_EQ(model_config_from_hf_json(qwen, nullptr, "x").architecture, "qwen2");
  qwen["use_sliding_window"] = true;
  EXPECT_NE(error_of(qwen).find("use_sliding_window"), std::string::npos);

  json mistral = llama_base();
  mistral["architectures"] = json::array({"MistralForCausalLM"});
  mistral["sliding_window"] = 256;
  const ModelConfig parsed = model_config_from_hf_json(mistral, nullptr, "x");
  EXPECT_EQ(parsed.architecture, "mistral");
  EXPECT_EQ(parsed.max_position_embeddings, 256);
  mistral["sliding_window"] = nullptr;
  EXPECT_EQ(model_config_from_hf_json(mistral, nullptr, "x").max_position_embeddings, 512);
}

TEST(HfConfig, RefusesWhatItCannotRun) {
  json unknown = llama_base();
  unknown["architectures"] = json::array({"GPTNeoXForCausalLM"});
  const std::string message = error_of(unknown);
  EXPECT_NE(message.find("GPTNeoXForCausalLM"), std::string::npos) << message;
  EXPECT_NE(message.find("LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"), std::string::npos) << message;
  EXPECT_NE(message.find("cfg/config.json"), std::string::npos) << message;

  json by_type = llama_base();  // no "architectures": model_type decides
  by_type.erase("architectures");
  by_type["model_type"] = "qwen2";
  EXPECT_EQ(model_config_from_hf_json(by_type, nullptr, "x").architecture, "qwen2");

  json bias = llama_base();
  bias["attention_bias"] = true;
  EXPECT_NE(error_of(bias).find("attention_bias"), std::string::npos);
  json gelu = llama_base();
  gelu["hidden_act"] = "gelu";
  EXPECT_NE(error_of(gelu).find("gelu"), std::string::npos);
  json missing = llama_base();
  missing.erase("vocab_size");
  EXPECT_NE(error_of(missing).find("vocab_size"), std::string::npos);
  json wrong_type = llama_base();
  wrong_type["hidden_size"] = "64";
  EXPECT_NE(error_of(wrong_type).find("hidden_size"), std::string::npos);
  json too_big = llama_base();
  too_big["hidden_size"] = 1ull << 40;
  EXPECT_NE(error_of(too_big).find("out of range"), std::string::npos);
  json bad_eos = llama_base();
  bad_eos["eos_token_id"] = json::array({1, "x"});
  EXPECT_NE(error_of(bad_eos).find("eos_token_id"), std::string::npos);
  json sliding_layers = llama_base();
  sliding_layers["layer_types"] = json::array({"full_attention", "sliding_attention"});
  EXPECT_NE(error_of(sliding_layers).find("sliding_attention"), std::string::npos);
  EXPECT_NE(error_of(json::array()).find("not a JSON object"), std::string::npos);
}

}  // namespace
}  // namespace tessera::runtime
