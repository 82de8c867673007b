#pragma once
// Named model shapes for benchmarks and tests without a model file: the published configurations of Llama 3
// 8B / 70B, Llama 3.1 405B and SmolLM2-135M, and a tiny model for tests. Paired with DummyWeightSource
// (`dummy:<preset>` model paths), they let a layout or a backend be exercised at a real model's size without
// downloading its weights.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model/model_config.h"

namespace tessera::runtime {

// "llama3-8b", "llama3-70b", "llama3-405b", "smollm2-135m", "tiny"; nullopt for any other name.
std::optional<ModelConfig> model_preset(std::string_view name);
std::vector<std::string> model_preset_names();

}  // namespace tessera::runtime
