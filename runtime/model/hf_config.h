#pragma once
// Hugging Face config.json (+ generation_config.json) -> ModelConfig, for the decoder-only architectures Tessera
// runs: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM. Both spellings of RoPE settings are read:
// transformers < 5 writes rope_theta + rope_scaling {"type" | "rope_type", ...}; transformers >= 5 writes
// rope_parameters {"rope_type", "rope_theta", ...}. Features Tessera would silently compute wrong (biases on
// o_proj or the MLP, activations other than SiLU, sliding-window layers) are Errors, not ignored.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/model/model_config.h"

namespace tessera::runtime {

// Reads <directory>/config.json and, when present, <directory>/generation_config.json, whose eos ids are added
// to config.json's (generation stops at any of them, as transformers' generate does with the generation
// config). The name is the directory's name. Throws tessera::Error naming the file and key.
ModelConfig model_config_from_hf(const std::filesystem::path& directory);

// The same from parsed JSON; `generation_config` may be null. `description` names the source in errors.
ModelConfig model_config_from_hf_json(const nlohmann::json& config, const nlohmann::json* generation_config,
                                      const std::string& description);

// "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"
std::string supported_hf_architectures();

}  // namespace tessera::runtime
