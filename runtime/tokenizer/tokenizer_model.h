#pragma once
// Internal to the tokenizer: the vocabulary tables both models share, and the interface of a model (what turns a
// fragment of raw text, with no added tokens in it, into ids). Tokenizer owns one of these.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/tokenizer/tokenizer_spec.h"

namespace tessera::runtime {

struct Vocab {
  const TokenizerSpec* spec = nullptr;
  std::unordered_map<std::string_view, int32_t> text_to_id;  // views into spec->tokens; first id wins

  int32_t find(std::string_view text) const {
    const auto it = text_to_id.find(text);
    return it == text_to_id.end() ? -1 : it->second;
  }
  TokenType type(int32_t id) const {
    return spec->token_types.empty() ? TokenType::kNormal : spec->token_types[static_cast<size_t>(id)];
  }
  // A control, unknown or user-defined token, or BOS/EOS/UNK/PAD: what plain text never becomes. A model never
  // merges into one of these (sentencepiece does not either), so that message content spelling "<s>" cannot turn
  // into BOS through its merges "< s>" (found by tests/fuzz/fuzz_chat_template.cpp).
  bool is_added(int32_t id) const {
    const TokenType t = type(id);
    if (t != TokenType::kNormal && t != TokenType::kByte) return true;
    for (const std::optional<int>& special : {spec->bos_id, spec->eos_id, spec->unk_id, spec->pad_id}) {
      if (special && *special == id) return true;
    }
    return false;
  }
};

class TokenizerModelImpl {
 public:
  virtual ~TokenizerModelImpl() = default;
  // Appends the ids of `text`, a fragment with no added tokens in it. `at_text_start`: the fragment begins at
  // byte 0 of the text being encoded (SentencePiece prefixes its space only there).
  virtual void encode(std::string_view text, bool at_text_start, std::vector<int32_t>& out) const = 0;
  // The bytes a normal (not added) token stands for in decoded text.
  virtual std::string token_bytes(int32_t id) const = 0;
};

std::unique_ptr<TokenizerModelImpl> make_byte_level_bpe(const Vocab& vocab);
std::unique_ptr<TokenizerModelImpl> make_sentencepiece_bpe(const Vocab& vocab);

}  // namespace tessera::runtime
