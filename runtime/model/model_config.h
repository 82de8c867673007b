#pragma once
// The one description of a decoder-only model that the rest of Tessera uses, whatever file it came from
// (GGUF metadata: llama.* / qwen2.* keys; Hugging Face config.json: LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tessera::runtime {

enum class RopeScalingType { kNone, kLinear, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  float factor = 1.0f;
  // llama3 only:
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // "llama", "mistral", "qwen2"
  std::string name;          // general.name or the directory name; informational
  int num_layers = 0;
  int hidden_size = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;           // usually hidden_size / num_heads
  int intermediate_size = 0;  // FFN size
  int vocab_size = 0;
  int max_position_embeddings = 0;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  float rms_norm_eps = 1e-5f;
  bool tie_word_embeddings = false;
  bool attention_qkv_bias = false;  // Qwen2
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;  // generation stops at any of them

  // Throws tessera::Error naming the first inconsistent field (e.g. heads not dividing hidden size).
  void validate() const;
  int64_t parameter_count() const;  // from the shapes, embeddings counted once when tied
};

}  // namespace tessera::runtime
