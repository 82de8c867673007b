#pragma once
// Opening a model from whatever the user points at: a Hugging Face model directory (config.json +
// safetensors) or a GGUF file. The rest of Tessera sees only the config and the WeightSource.
#include <filesystem>
#include <memory>

#include "runtime/model/model_config.h"
#include "runtime/model/weight_source.h"

namespace tessera::runtime {

struct ModelSource {
  ModelConfig config;  // validated
  std::unique_ptr<WeightSource> weights;
};

// A directory -> Hugging Face (config.json, generation_config.json, safetensors); a *.gguf file -> GGUF;
// "dummy:<preset>" -> a preset's shapes with deterministic random weights (model_presets.h, no file, no tokenizer).
// Throws tessera::Error naming the path when it does not exist or is neither.
ModelSource open_model_source(const std::filesystem::path& path);
// Whether `path` names dummy weights ("dummy:<preset>"): such a model has no tokenizer.
bool is_dummy_model_path(const std::filesystem::path& path);

}  // namespace tessera::runtime
