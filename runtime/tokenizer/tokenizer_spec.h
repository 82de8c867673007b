#pragma once
// Everything needed to build a tokenizer, independent of where it came from (GGUF tokenizer.ggml.* metadata
// or a Hugging Face tokenizer.json + tokenizer_config.json).
#include <optional>
#include <string>
#include <vector>

namespace tessera::runtime {

enum class TokenizerModel {
  kByteLevelBpe,      // GPT-2 style: bytes mapped to printable unicode, pre-tokenizer regex, merges (GGUF "gpt2")
  kSentencePieceBpe,  // Llama-2 / Mistral: "▁" for spaces, byte fallback <0xNN>, merges or scores (GGUF "llama")
};

enum class TokenType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct TokenizerSpec {
  TokenizerModel model = TokenizerModel::kByteLevelBpe;
  std::string pre_tokenizer;         // GGUF tokenizer.ggml.pre ("smollm", "llama-bpe", "qwen2", "default", ...)
  std::vector<std::string> tokens;   // id -> token text (as stored: byte-level unicode or "▁" form)
  std::vector<float> scores;         // SentencePiece scores (may be empty)
  std::vector<TokenType> token_types;  // may be empty: all normal
  std::vector<std::string> merges;   // "a b" pairs, highest priority first (may be empty for SPM with scores)
  std::optional<int> bos_id;
  std::optional<int> eos_id;
  std::optional<int> unk_id;
  std::optional<int> pad_id;
  bool add_bos = false;              // prepend BOS when encoding a prompt
  bool add_eos = false;
  bool add_space_prefix = false;     // SentencePiece: prepend "▁" to the text
  std::optional<std::string> chat_template;  // Jinja text from the model's metadata, if any
  // Explicit split regexes (from a tokenizer.json pre_tokenizer); when empty, pre_tokenizer names them.
  std::vector<std::string> pre_regexes;
  bool ignore_merges = false;        // BPE: a piece that is a whole token is taken as is (HF ignore_merges)
};

}  // namespace tessera::runtime
