#pragma once
// Internal to the tokenizer: the vocabulary tables both models share, and the interface of a model (what turns a
// fragment of raw text, with no added tokens in it, into ids). Tokenizer owns one of these.
#include <cstdint>
#include <memory>
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
