#include "runtime/model/model_config_gguf.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

class MetadataReader {
 public:
  MetadataReader(const GgufFile& file, std::string arch) : file_(file), arch_(std::move(arch)) {}

  std::string key(std::string_view suffix) const { return concat(arch_, ".", suffix); }

  std::optional<int> optional_int(std::string_view suffix) const {
    const std::string name = key(suffix);
    const GgufValue* value = file_.find(name);
    if (value == nullptr) return std::nullopt;
    // Some architectures store per-layer arrays (e.g. head counts); Tessera's decoder is uniform.
    TESSERA_CHECK(value->as_array() == nullptr, file_.description(), ": ", name,
                  " is a per-layer array; Tessera supports only uniform layers");
    const int64_t number = *file_.get_int(name);
    TESSERA_CHECK(number >= 0 && number <= std::numeric_limits<int>::max(), file_.description(), ": ", name, " = ",
                  number, " is out of range");
    return static_cast<int>(number);
  }
  int required_int(std::string_view suffix) const {
    const auto value = optional_int(suffix);
    TESSERA_CHECK(value.has_value(), file_.description(), ": missing metadata key ", key(suffix));
    return *value;
  }
  std::optional<float> optional_float(std::string_view suffix) const {
    const auto value = file_.get_float(key(suffix));
    if (!value) return std::nullopt;
    return static_cast<float>(*value);
  }

 private:
  const GgufFile& file_;
  std::string arch_;
};

// llama.cpp's converter does not store Llama 3's rope-scaling parameters: it stores their result, one
// frequency factor per rotary pair, as the tensor rope_freqs.weight. Recognise the standard parameters
// (low 1, high 4, original context 8192 unless the file says otherwise, factor = the largest factor) by
// recomputing the factors exactly as the converter did and comparing.
RopeScaling llama3_scaling_from_factors(const GgufFile& file, const GgufTensorInfo& tensor, const ModelConfig& config,
                                        std::optional<int> original_context) {
  const int pairs = config.head_dim / 2;
  TESSERA_CHECK(tensor.dims.size() == 1 && tensor.dims[0] == pairs, file.description(),
                ": rope_freqs.weight should have head_dim / 2 = ", pairs, " elements");
  std::vector<float> factors(static_cast<size_t>(pairs));
  file.read_rows(tensor, 0, 1, factors.data());
  RopeScaling scaling;
  scaling.type = RopeScalingType::kLlama3;
  scaling.factor = *std::max_element(factors.begin(), factors.end());
  scaling.low_freq_factor = 1.0f;
  scaling.high_freq_factor = 4.0f;
  scaling.original_max_position_embeddings = original_context.value_or(8192);
  const double low_wavelen = scaling.original_max_position_embeddings / static_cast<double>(scaling.low_freq_factor);
  const double high_wavelen = scaling.original_max_position_embeddings / static_cast<double>(scaling.high_freq_factor);
  for (int i = 0; i < pairs; ++i) {
    const double freq = 1.0 / std::pow(static_cast<double>(config.rope_theta), 2.0 * i / config.head_dim);
    const double wavelen = 2.0 * std::numbers::pi / freq;
    const auto factor = static_cast<double>(scaling.factor);
    const auto low = static_cast<double>(scaling.low_freq_factor);
    const auto high = static_cast<double>(scaling.high_freq_factor);
    double expected = 1.0;
    if (wavelen > low_wavelen) {
      expected = factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (scaling.original_max_position_embeddings / wavelen - low) / (high - low);
      expected = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    TESSERA_CHECK(std::abs(static_cast<double>(factors[i]) - expected) <= 1e-4 * expected, file.description(),
                  ": rope_freqs.weight[", i, "] = ", factors[i], " does not match Llama 3 rope scaling (factor ",
                  scaling.factor, ", low 1, high 4, original context ", scaling.original_max_position_embeddings,
                  ", expected ", expected, "); these frequency factors are not supported");
  }
  return scaling;
}

}  // namespace

ModelConfig model_config_from_gguf(const GgufFile& file) {
  ModelConfig config;
  const auto arch = file.get_string("general.architecture");
  TESSERA_CHECK(arch.has_value(), file.description(), ": missing metadata key general.architecture");
  TESSERA_CHECK(*arch == "llama" || *arch == "qwen2", file.description(), ": architecture '", *arch,
                "' is not supported (expected llama or qwen2)");
  config.architecture = *arch;
  config.name = file.get_string("general.name").value_or(std::filesystem::path(file.description()).stem().string());
  const MetadataReader meta(file, *arch);

  config.num_layers = meta.required_int("block_count");
  config.hidden_size = meta.required_int("embedding_length");
  config.num_heads = meta.required_int("attention.head_count");
  config.num_kv_heads = meta.optional_int("attention.head_count_kv").value_or(config.num_heads);
  config.intermediate_size = meta.required_int("feed_forward_length");
  config.max_position_embeddings = meta.required_int("context_length");
  TESSERA_CHECK(config.num_heads > 0, file.description(), ": ", meta.key("attention.head_count"), " is 0");
  config.head_dim = meta.optional_int("attention.key_length").value_or(config.hidden_size / config.num_heads);
  const auto value_length = meta.optional_int("attention.value_length");
  TESSERA_CHECK(!value_length || *value_length == config.head_dim, file.description(), ": ",
                meta.key("attention.value_length"), " = ", *value_length, " differs from the key length ",
                config.head_dim, "; Tessera needs equal key and value head sizes");
  const auto rotary = meta.optional_int("rope.dimension_count");
  TESSERA_CHECK(!rotary || *rotary == config.head_dim, file.description(), ": ", meta.key("rope.dimension_count"),
                " = ", *rotary, " but head_dim is ", config.head_dim, "; partial rotary embeddings are not supported");

  config.rope_theta = meta.optional_float("rope.freq_base").value_or(10000.0f);
  config.rms_norm_eps = meta.optional_float("attention.layer_norm_rms_epsilon").value_or(1e-5f);

  // RoPE scaling: "linear" in metadata; Llama 3's as a frequency-factor tensor (see above); others refused.
  const std::string scaling_type = file.get_string(meta.key("rope.scaling.type")).value_or("none");
  const auto scaling_factor = meta.optional_float("rope.scaling.factor");
  if (scaling_type == "linear") {
    config.rope_scaling.type = RopeScalingType::kLinear;
    config.rope_scaling.factor = scaling_factor.value_or(1.0f);
  } else {
    TESSERA_CHECK(scaling_type == "none", file.description(), ": ", meta.key("rope.scaling.type"), " '",
                  scaling_type, "' is not supported (none, linear, or Llama 3 frequency factors)");
  }
  if (const GgufTensorInfo* factors = file.find_tensor("rope_freqs.weight")) {
    TESSERA_CHECK(config.rope_scaling.type == RopeScalingType::kNone, file.description(),
                  ": both rope.scaling.type and rope_freqs.weight are present");
    config.rope_scaling = llama3_scaling_from_factors(file, *factors, config,
                                                      meta.optional_int("rope.scaling.original_context_length"));
  }

  // The vocabulary: the tokenizer's token list; else the architecture's vocab_size; else the embedding rows.
  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  if (tokens != nullptr && tokens->as_array() != nullptr) {
    config.vocab_size = static_cast<int>(std::min<size_t>(tokens->as_array()->size(), std::numeric_limits<int>::max()));
  } else if (const auto vocab = meta.optional_int("vocab_size")) {
    config.vocab_size = *vocab;
  } else if (const GgufTensorInfo* embedding = file.find_tensor("token_embd.weight")) {
    config.vocab_size = static_cast<int>(embedding->rows());
  }

  config.tie_word_embeddings = file.find_tensor("output.weight") == nullptr;
  config.attention_qkv_bias = *arch == "qwen2" || file.find_tensor("blk.0.attn_q.bias") != nullptr;

  auto special = [&](const char* key) -> std::optional<int> {
    const auto id = file.get_int(key);
    if (!id || *id < 0) return std::nullopt;  // -1: "none"
    TESSERA_CHECK(*id < config.vocab_size, file.description(), ": ", key, " = ", *id, " outside the vocabulary of ",
                  config.vocab_size);
    return static_cast<int>(*id);
  };
  config.bos_token_id = special("tokenizer.ggml.bos_token_id");
  // Generation stops at the end-of-sequence token and at the end-of-turn / end-of-message tokens when the file
  // names them (llama.cpp's eot/eom ids, e.g. Llama 3's <|eot_id|>).
  for (const char* key :
       {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    const auto id = special(key);
    if (id && std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), *id) == config.eos_token_ids.end()) {
      config.eos_token_ids.push_back(*id);
    }
  }
  config.validate();
  return config;
}

}  // namespace tessera::runtime
