#pragma once
// Text <-> token ids for the models Tessera serves, built from a TokenizerSpec (GGUF metadata or a Hugging Face
// tokenizer.json). Two models: byte-level BPE and SentencePiece BPE. Added tokens (control and user-defined) are
// matched in the raw text before either model runs. Matches Hugging Face `tokenizers` id for id on the golden
// corpora in tests/fixtures/tokenizer. All const methods are safe to call from several threads.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/tokenizer_spec.h"

namespace tessera::runtime {

class TokenizerModelImpl;
class SpecialTokenMatcher;
struct Vocab;

class Tokenizer {
 public:
  // Validates the spec (sizes, ids in range, merges) and builds the tables; throws tessera::Error.
  explicit Tokenizer(TokenizerSpec spec);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: prepend BOS / append EOS as the spec's add_bos/add_eos say. parse_special: added tokens written
  // in the text ("<|im_start|>") become their ids; false treats them as plain text (for untrusted content).
  // Any bytes are accepted; invalid UTF-8 is tokenized byte by byte (byte-level) or by byte fallback (SPM).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = true) const;
  // Appends the ids of `text` as plain text (no special tokens, no BOS/EOS). at_text_start: the text begins the
  // whole input (SentencePiece's prefix-space rule applies there only), as for encode's first fragment.
  void encode_plain(std::string_view text, bool at_text_start, std::vector<int32_t>& out) const;
  // Always valid UTF-8: invalid byte sequences become U+FFFD. SentencePiece vocabularies with a space prefix
  // drop one leading space of the result (HF's Strip decoder), the inverse of the prefix encode added.
  std::string decode(std::span<const int32_t> ids, bool skip_special) const;

  // The bytes token `id` contributes to decoded text (no leading-space rule, may be part of a UTF-8 character).
  const std::string& token_to_piece(int32_t id) const;
  // The token as the vocabulary spells it ("Ġthe", "▁the", "<|im_end|>").
  const std::string& token_text(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view text) const;  // by vocabulary spelling
  int32_t vocab_size() const { return static_cast<int32_t>(spec_.tokens.size()); }

  std::optional<int32_t> bos_id() const { return spec_.bos_id; }
  std::optional<int32_t> eos_id() const { return spec_.eos_id; }
  std::optional<int32_t> unk_id() const { return spec_.unk_id; }
  std::optional<int32_t> pad_id() const { return spec_.pad_id; }
  // Control/unknown tokens and BOS/EOS/UNK/PAD: what decode(skip_special = true) leaves out.
  bool is_special(int32_t id) const;
  // Ids that end a generated turn: EOS plus the vocabulary's end-of-turn tokens (<|im_end|>, <|eot_id|>,
  // <|eom_id|>, <|endoftext|>, <|end_of_text|>) where present.
  const std::vector<int32_t>& end_of_generation_ids() const { return end_of_generation_; }

  TokenizerModel model() const { return spec_.model; }
  bool strips_leading_space() const { return strip_leading_space_; }
  const TokenizerSpec& spec() const { return spec_; }

 private:
  void check_id(int32_t id) const;

  TokenizerSpec spec_;
  std::unique_ptr<Vocab> vocab_;
  std::unique_ptr<TokenizerModelImpl> impl_;
  std::unique_ptr<SpecialTokenMatcher> added_;
  std::vector<std::string> pieces_;   // id -> decoded bytes
  std::vector<uint8_t> special_;      // id -> is_special
  std::vector<int32_t> end_of_generation_;
  bool strip_leading_space_ = false;
};

// Decodes a stream of ids as they are generated: push() returns the text that became complete, never half a
// UTF-8 character (an incomplete tail is held back); flush() returns what is left at the end. The concatenation
// of all outputs equals tokenizer.decode(all ids) when sequence_start is true (the ids start the text, so the
// SentencePiece leading-space rule applies); pass false for a continuation such as generated ids after a prompt.
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special = true, bool sequence_start = true);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool strip_pending_;
  std::string pending_;
};

}  // namespace tessera::runtime
