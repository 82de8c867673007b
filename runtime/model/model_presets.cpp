#include "runtime/model/model_presets.h"

namespace tessera::runtime {
namespace {

ModelConfig llama3(std::string name, int layers, int hidden, int heads, int ffn) {
  ModelConfig c;
  c.architecture = "llama";
  c.name = std::move(name);
  c.num_layers = layers;
  c.hidden_size = hidden;
  c.num_heads = heads;
  c.num_kv_heads = 8;
  c.head_dim = hidden / heads;
  c.intermediate_size = ffn;
  c.vocab_size = 128256;
  c.max_position_embeddings = 131072;
  c.rope_theta = 500000.0f;
  c.rope_scaling = {RopeScalingType::kLlama3, 8.0f, 1.0f, 4.0f, 8192};
  c.rms_norm_eps = 1e-5f;
  c.bos_token_id = 128000;
  c.eos_token_ids = {128001, 128008, 128009};
  return c;
}

ModelConfig smollm2_135m() {
  ModelConfig c;
  c.architecture = "llama";
  c.name = "dummy:smollm2-135m";
  c.num_layers = 30;
  c.hidden_size = 576;
  c.num_heads = 9;
  c.num_kv_heads = 3;
  c.head_dim = 64;
  c.intermediate_size = 1536;
  c.vocab_size = 49152;
  c.max_position_embeddings = 8192;
  c.rope_theta = 100000.0f;
  c.rms_norm_eps = 1e-5f;
  c.tie_word_embeddings = true;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

// Small enough for a unit test, shaped to exercise everything a layout can split: 4 layers (pp up to 4), 4 query
// heads over 2 KV heads (GQA; split at tp=2, replicated at tp=4), FFN and vocabulary divisible by 4, rows a whole
// number of q8_0 blocks. No end-of-generation id: a greedy run always makes its full length.
ModelConfig tiny() {
  ModelConfig c;
  c.architecture = "llama";
  c.name = "dummy:tiny";
  c.num_layers = 4;
  c.hidden_size = 128;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 32;
  c.intermediate_size = 256;
  c.vocab_size = 512;
  c.max_position_embeddings = 1024;
  c.rope_theta = 10000.0f;
  c.rms_norm_eps = 1e-5f;
  return c;
}

}  // namespace

std::optional<ModelConfig> model_preset(std::string_view name) {
  if (name == "llama3-8b") return llama3("dummy:llama3-8b", 32, 4096, 32, 14336);
  if (name == "llama3-70b") return llama3("dummy:llama3-70b", 80, 8192, 64, 28672);
  if (name == "llama3-405b") return llama3("dummy:llama3-405b", 126, 16384, 128, 53248);
  if (name == "smollm2-135m") return smollm2_135m();
  if (name == "tiny") return tiny();
  return std::nullopt;
}

std::vector<std::string> model_preset_names() { return {"llama3-8b", "llama3-70b", "llama3-405b", "smollm2-135m", "tiny"}; }

}  // namespace tessera::runtime
