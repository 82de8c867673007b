#pragma once
// A TokenizerSpec from Hugging Face files: tokenizer.json (a BPE model with a ByteLevel pipeline, optionally
// preceded by Split/Digits steps, or a Metaspace one for SentencePiece-style vocabularies; added_tokens; merges as
// "a b" strings or [a, b] pairs) and, optionally, tokenizer_config.json (add_bos_token/add_eos_token, the special
// token names, chat_template). Pipelines Tessera cannot reproduce exactly (normalizers, Metaspace with
// prepend_scheme "always" or split, WordPiece/Unigram models) are an Error naming the file and the part.
#include <filesystem>
#include <optional>

#include "runtime/tokenizer/tokenizer_spec.h"

namespace tessera::runtime {

TokenizerSpec tokenizer_spec_from_hf_json(const std::filesystem::path& tokenizer_json,
                                          const std::optional<std::filesystem::path>& tokenizer_config = std::nullopt);

}  // namespace tessera::runtime
