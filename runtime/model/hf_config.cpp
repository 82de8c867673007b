#include "runtime/model/hf_config.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <optional>
#include <string_view>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Architecture {
  std::string_view hf_name;     // "architectures" entry
  std::string_view model_type;  // "model_type", used when "architectures" is absent
  std::string_view name;        // ModelConfig::architecture
};
constexpr std::array<Architecture, 3> kArchitectures{{
    {"LlamaForCausalLM", "llama", "llama"},
    {"MistralForCausalLM", "mistral", "mistral"},
    {"Qwen2ForCausalLM", "qwen2", "qwen2"},
}};

// Typed access to config keys; a key that is absent or null is "not set".
class Reader {
 public:
  Reader(const json& object, std::string description) : object_(object), description_(std::move(description)) {}

  const json* find(std::string_view key) const {
    const auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  std::optional<int> get_int(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    TESSERA_CHECK(value->is_number_integer(), description_, ": '", key, "' must be an integer, found ",
                  value->dump());
    const bool in_range = value->is_number_unsigned()
                              ? value->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max())
                              : value->get<int64_t>() >= std::numeric_limits<int>::min() &&
                                    value->get<int64_t>() <= std::numeric_limits<int>::max();
    TESSERA_CHECK(in_range, description_, ": '", key, "' = ", value->dump(), " is out of range");
    const auto number = value->get<int64_t>();
    return static_cast<int>(number);
  }
  int require_int(std::string_view key) const {
    const auto value = get_int(key);
    TESSERA_CHECK(value.has_value(), description_, ": missing '", key, "'");
    return *value;
  }
  std::optional<float> get_float(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    TESSERA_CHECK(value->is_number(), description_, ": '", key, "' must be a number, found ", value->dump());
    return value->get<float>();
  }
  float require_float(std::string_view key) const {
    const auto value = get_float(key);
    TESSERA_CHECK(value.has_value(), description_, ": missing '", key, "'");
    return *value;
  }
  std::optional<bool> get_bool(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    TESSERA_CHECK(value->is_boolean(), description_, ": '", key, "' must be true or false, found ", value->dump());
    return value->get<bool>();
  }
  std::optional<std::string> get_string(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    TESSERA_CHECK(value->is_string(), description_, ": '", key, "' must be a string, found ", value->dump());
    return value->get<std::string>();
  }
  // eos_token_id / bos_token_id: an integer, a list of integers, or null.
  std::vector<int> get_ids(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr) return {};
    std::vector<int> ids;
    for (const json& item : value->is_array() ? *value : json::array({*value})) {
      const bool valid = item.is_number_integer() && item.get<int64_t>() >= 0 &&
                         item.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max());
      TESSERA_CHECK(valid, description_, ": '", key, "' must be a token id or a list of them, found ",
                    value->dump());
      ids.push_back(item.get<int>());
    }
    return ids;
  }
  const std::string& description() const { return description_; }

 private:
  const json& object_;
  std::string description_;
};

const Architecture& find_architecture(const Reader& config) {
  std::string requested;
  if (const json* list = config.find("architectures"); list != nullptr) {
    TESSERA_CHECK(list->is_array() && !list->empty() && (*list)[0].is_string(), config.description(),
                  ": 'architectures' must be a non-empty list of names, found ", list->dump());
    requested = (*list)[0].get<std::string>();
    for (const auto& architecture : kArchitectures) {
      if (architecture.hf_name == requested) return architecture;
    }
  } else if (const auto model_type = config.get_string("model_type")) {
    requested = "model_type " + *model_type;
    for (const auto& architecture : kArchitectures) {
      if (architecture.model_type == *model_type) return architecture;
    }
  } else {
    fail(config.description(), ": neither 'architectures' nor 'model_type' is set (supported: ",
         supported_hf_architectures(), ")");
  }
  fail(config.description(), ": unsupported architecture ", requested, " (supported: ", supported_hf_architectures(),
       ")");
}

// RoPE: rope_parameters (transformers >= 5, theta inside) or rope_theta + rope_scaling (older).
void read_rope(const Reader& config, ModelConfig& model) {
  const json* parameters = config.find("rope_parameters");
  std::string key = "rope_parameters";
  if (parameters == nullptr) {
    parameters = config.find("rope_scaling");
    key = "rope_scaling";
  }
  model.rope_theta = config.get_float("rope_theta").value_or(10000.0f);
  if (parameters == nullptr) return;
  TESSERA_CHECK(parameters->is_object(), config.description(), ": '", key, "' must be an object, found ",
                parameters->dump());
  const Reader rope(*parameters, concat(config.description(), " ", key));
  model.rope_theta = rope.get_float("rope_theta").value_or(model.rope_theta);
  const std::string type = rope.get_string("rope_type").value_or(rope.get_string("type").value_or("default"));
  RopeScaling& scaling = model.rope_scaling;
  if (type == "default") {
    scaling = RopeScaling{};
  } else if (type == "linear") {
    scaling.type = RopeScalingType::kLinear;
    scaling.factor = rope.require_float("factor");
  } else if (type == "llama3") {
    scaling.type = RopeScalingType::kLlama3;
    scaling.factor = rope.require_float("factor");
    scaling.low_freq_factor = rope.require_float("low_freq_factor");
    scaling.high_freq_factor = rope.require_float("high_freq_factor");
    scaling.original_max_position_embeddings = rope.require_int("original_max_position_embeddings");
  } else {
    fail(rope.description(), ": unsupported rope type '", type, "' (supported: default, linear, llama3)");
  }
}

// Attention and MLP shapes Tessera's decoder computes; anything else is refused rather than run wrong.
void check_supported_features(const Reader& config, const Architecture& architecture, ModelConfig& model) {
  const std::string act = config.get_string("hidden_act").value_or("silu");
  TESSERA_CHECK(act == "silu", config.description(), ": hidden_act '", act, "' is not supported (only silu)");
  TESSERA_CHECK(!config.get_bool("mlp_bias").value_or(false), config.description(),
                ": mlp_bias is not supported");
  if (architecture.name == "qwen2") {
    model.attention_qkv_bias = true;  // Qwen2 always has q/k/v biases and an o_proj without one
    TESSERA_CHECK(!config.get_bool("use_sliding_window").value_or(false), config.description(),
                  ": Qwen2 sliding-window attention (use_sliding_window) is not supported");
  } else {
    // Llama's attention_bias puts a bias on o_proj too, which Tessera's weights have no place for.
    TESSERA_CHECK(!config.get_bool("attention_bias").value_or(false), config.description(),
                  ": attention_bias (biases on q/k/v/o projections) is not supported for ", architecture.hf_name);
  }
  if (const json* layer_types = config.find("layer_types"); layer_types != nullptr) {
    TESSERA_CHECK(layer_types->is_array(), config.description(), ": 'layer_types' must be a list");
    for (const json& type : *layer_types) {
      TESSERA_CHECK(type == "full_attention", config.description(), ": layer type ", type.dump(),
                    " is not supported (only full_attention)");
    }
  }
  // Mistral v0.1 attends within a sliding window; up to the window's length that is exactly full attention,
  // so the context is capped there instead of computing longer sequences wrong.
  if (architecture.name == "mistral") {
    if (const auto window = config.get_int("sliding_window"); window && *window < model.max_position_embeddings) {
      TESSERA_CHECK(*window > 0, config.description(), ": sliding_window ", *window, " must be positive");
      model.max_position_embeddings = *window;
    }
  }
}

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  TESSERA_CHECK(in.good(), "cannot read ", path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& error) {
    fail(path.string(), ": not valid JSON: ", error.what());
  }
}

}  // namespace

std::string supported_hf_architectures() {
  std::string names;
  for (const auto& architecture : kArchitectures) {
    names += (names.empty() ? "" : ", ") + std::string(architecture.hf_name);
  }
  return names;
}

ModelConfig model_config_from_hf_json(const json& config_json, const json* generation_config,
                                      const std::string& description) {
  TESSERA_CHECK(config_json.is_object(), description, ": not a JSON object");
  const Reader config(config_json, description);
  const Architecture& architecture = find_architecture(config);

  ModelConfig model;
  model.architecture = std::string(architecture.name);
  model.hidden_size = config.require_int("hidden_size");
  model.num_layers = config.require_int("num_hidden_layers");
  model.num_heads = config.require_int("num_attention_heads");
  TESSERA_CHECK(model.num_heads > 0, description, ": num_attention_heads must be positive");
  model.num_kv_heads = config.get_int("num_key_value_heads").value_or(model.num_heads);
  model.head_dim = config.get_int("head_dim").value_or(model.hidden_size / model.num_heads);
  model.intermediate_size = config.require_int("intermediate_size");
  model.vocab_size = config.require_int("vocab_size");
  model.max_position_embeddings = config.require_int("max_position_embeddings");
  model.rms_norm_eps = config.get_float("rms_norm_eps").value_or(1e-6f);
  model.tie_word_embeddings = config.get_bool("tie_word_embeddings").value_or(false);
  read_rope(config, model);
  check_supported_features(config, architecture, model);

  if (const auto bos = config.get_ids("bos_token_id"); !bos.empty()) model.bos_token_id = bos.front();
  model.eos_token_ids = config.get_ids("eos_token_id");
  if (generation_config != nullptr) {
    TESSERA_CHECK(generation_config->is_object(), "generation config of ", description, ": not a JSON object");
    const Reader generation(*generation_config, concat("generation config of ", description));
    if (!model.bos_token_id) {
      if (const auto bos = generation.get_ids("bos_token_id"); !bos.empty()) model.bos_token_id = bos.front();
    }
    for (int id : generation.get_ids("eos_token_id")) {
      if (std::find(model.eos_token_ids.begin(), model.eos_token_ids.end(), id) == model.eos_token_ids.end()) {
        model.eos_token_ids.push_back(id);
      }
    }
  }
  return model;
}

ModelConfig model_config_from_hf(const fs::path& directory) {
  const fs::path config_path = directory / "config.json";
  TESSERA_CHECK(fs::exists(config_path), "model directory ", directory.string(), " has no config.json");
  const json config = read_json(config_path);
  const fs::path generation_path = directory / "generation_config.json";
  std::optional<json> generation;
  if (fs::exists(generation_path)) generation = read_json(generation_path);
  ModelConfig model = model_config_from_hf_json(config, generation ? &*generation : nullptr, config_path.string());
  model.name = directory.filename().empty() ? directory.parent_path().filename().string()
                                            : directory.filename().string();
  model.validate();
  return model;
}

}  // namespace tessera::runtime
