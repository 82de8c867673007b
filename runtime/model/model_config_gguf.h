#pragma once
// GGUF metadata (llama.* / qwen2.* keys, tokenizer.ggml.* special ids) -> ModelConfig.
#include "runtime/model/gguf_file.h"
#include "runtime/model/model_config.h"

namespace tessera::runtime {

// Reads the architecture's hyper-parameters; the config is validated. Architectures: "llama" (also Mistral
// files, which llama.cpp converts as llama) and "qwen2". Throws tessera::Error naming the file and the key that
// is missing or inconsistent, or the feature Tessera would compute wrong.
ModelConfig model_config_from_gguf(const GgufFile& file);

}  // namespace tessera::runtime
