#pragma once
// The tokenizer that belongs to a model path: a GGUF file's tokenizer.ggml.* metadata, or a Hugging Face
// directory's tokenizer.json (+ tokenizer_config.json).
#include <filesystem>
#include <memory>

#include "runtime/tokenizer/tokenizer.h"

namespace tessera::runtime {

// Throws tessera::Error naming the path when no tokenizer can be built from it.
std::unique_ptr<Tokenizer> load_model_tokenizer(const std::filesystem::path& model);

// The model's tokenizer, or null when the model has none (dummy:<preset>, a Hugging Face directory without
// tokenizer.json): such models take prompts as token ids. A tokenizer that exists but is broken is still an Error.
std::unique_ptr<Tokenizer> load_model_tokenizer_if_any(const std::filesystem::path& model);

}  // namespace tessera::runtime
