#pragma once
// A TokenizerSpec from a GGUF file's tokenizer.ggml.* metadata (llama.cpp's vocabulary keys).
#include "runtime/model/gguf_file.h"
#include "runtime/tokenizer/tokenizer_spec.h"

namespace tessera::runtime {

// Throws tessera::Error naming the file and key when the vocabulary is missing, of an unsupported model
// ("bert", "t5", ...) or inconsistent (scores/token types not one per token, special ids out of range).
TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& file);

}  // namespace tessera::runtime
