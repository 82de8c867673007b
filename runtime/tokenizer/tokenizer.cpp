#include "runtime/tokenizer/tokenizer.h"

#include <algorithm>

#include "kernels/base/error.h"
#include "runtime/tokenizer/special_tokens.h"
#include "runtime/tokenizer/tokenizer_model.h"
#include "runtime/tokenizer/utf8.h"

namespace tessera::runtime {

namespace {

void validate(const TokenizerSpec& spec) {
  const size_t n = spec.tokens.size();
  TESSERA_CHECK(n > 0, "tokenizer: the vocabulary is empty");
  TESSERA_CHECK(n < (size_t{1} << 31), "tokenizer: vocabulary of ", n, " tokens is too large");
  TESSERA_CHECK(spec.token_types.empty() || spec.token_types.size() == n, "tokenizer: ", spec.token_types.size(),
                " token types for ", n, " tokens");
  TESSERA_CHECK(spec.scores.empty() || spec.scores.size() == n, "tokenizer: ", spec.scores.size(), " scores for ", n,
                " tokens");
  const auto check = [&](const std::optional<int>& id, const char* what) {
    TESSERA_CHECK(!id || (*id >= 0 && static_cast<size_t>(*id) < n), "tokenizer: ", what, " id ", id.value_or(0),
                  " is outside the vocabulary of ", n, " tokens");
  };
  check(spec.bos_id, "BOS");
  check(spec.eos_id, "EOS");
  check(spec.unk_id, "UNK");
  check(spec.pad_id, "PAD");
  TESSERA_CHECK(!spec.add_bos || spec.bos_id, "tokenizer: add_bos is set but there is no BOS token");
  TESSERA_CHECK(!spec.add_eos || spec.eos_id, "tokenizer: add_eos is set but there is no EOS token");
}

}  // namespace

Tokenizer::Tokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {
  validate(spec_);
  const size_t n = spec_.tokens.size();
  vocab_ = std::make_unique<Vocab>();
  vocab_->spec = &spec_;
  vocab_->text_to_id.reserve(n);
  for (size_t id = 0; id < n; ++id) vocab_->text_to_id.emplace(spec_.tokens[id], static_cast<int32_t>(id));

  impl_ = spec_.model == TokenizerModel::kByteLevelBpe ? make_byte_level_bpe(*vocab_) : make_sentencepiece_bpe(*vocab_);
  strip_leading_space_ = spec_.model == TokenizerModel::kSentencePieceBpe && spec_.add_space_prefix;

  // Added tokens: what is matched in raw text, what decode skips, and how each id reads back.
  added_ = std::make_unique<SpecialTokenMatcher>();
  special_.assign(n, 0);
  pieces_.resize(n);
  const auto mark = [&](const std::optional<int>& id) {
    if (id) special_[static_cast<size_t>(*id)] = 1;
  };
  mark(spec_.bos_id);
  mark(spec_.eos_id);
  mark(spec_.unk_id);
  mark(spec_.pad_id);
  for (size_t id = 0; id < n; ++id) {
    const auto i = static_cast<int32_t>(id);
    const TokenType type = vocab_->type(i);
    const bool control = type == TokenType::kControl || type == TokenType::kUnknown;
    if (control) special_[id] = 1;
    const bool added = control || type == TokenType::kUserDefined || special_[id] != 0;
    if (added) {
      added_->add(spec_.tokens[id], i);
      pieces_[id] = spec_.tokens[id];  // added tokens read back as written
    } else {
      pieces_[id] = impl_->token_bytes(i);
    }
  }
  if (spec_.eos_id) end_of_generation_.push_back(*spec_.eos_id);
  for (const char* text : {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>", "<|end_of_text|>"}) {
    const int32_t id = vocab_->find(text);
    if (id >= 0 && std::find(end_of_generation_.begin(), end_of_generation_.end(), id) == end_of_generation_.end()) {
      end_of_generation_.push_back(id);
    }
  }
}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special && spec_.add_bos) ids.push_back(*spec_.bos_id);
  thread_local std::vector<SpecialTokenMatcher::Fragment> fragments;
  fragments.clear();
  if (parse_special) {
    added_->split(text, fragments);
  } else if (!text.empty()) {
    fragments.push_back(SpecialTokenMatcher::Fragment{text, -1, 0});
  }
  for (const auto& fragment : fragments) {
    if (fragment.id >= 0) {
      ids.push_back(fragment.id);
    } else {
      impl_->encode(fragment.text, fragment.offset == 0, ids);
    }
  }
  if (add_special && spec_.add_eos) ids.push_back(*spec_.eos_id);
  return ids;
}

void Tokenizer::encode_plain(std::string_view text, bool at_text_start, std::vector<int32_t>& out) const {
  if (!text.empty()) impl_->encode(text, at_text_start, out);
}

void Tokenizer::check_id(int32_t id) const {
  TESSERA_CHECK(id >= 0 && id < vocab_size(), "tokenizer: token id ", id, " is outside the vocabulary of ",
                vocab_size(), " tokens");
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (const int32_t id : ids) {
    check_id(id);
    if (skip_special && special_[static_cast<size_t>(id)] != 0) continue;
    bytes += pieces_[static_cast<size_t>(id)];
  }
  if (strip_leading_space_ && !bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
  return utf8_sanitize(bytes);
}

const std::string& Tokenizer::token_to_piece(int32_t id) const {
  check_id(id);
  return pieces_[static_cast<size_t>(id)];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return spec_.tokens[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const int32_t id = vocab_->find(text);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
  check_id(id);
  return special_[static_cast<size_t>(id)] != 0;
}

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special, bool sequence_start)
    : tokenizer_(tokenizer), skip_special_(skip_special),
      strip_pending_(sequence_start && tokenizer.strips_leading_space()) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  const std::string& piece = tokenizer_.token_to_piece(id);
  if (piece.empty()) return {};
  pending_ += piece;
  if (strip_pending_) {
    if (pending_[0] == ' ') pending_.erase(0, 1);
    strip_pending_ = false;
  }
  const size_t decided = utf8_decided_prefix(pending_);
  std::string out = utf8_sanitize(std::string_view(pending_).substr(0, decided));
  pending_.erase(0, decided);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out = utf8_sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace tessera::runtime
