// SentencePiece BPE (Llama-2, Mistral): spaces become "▁", the text gets a "▁" prefix, characters are merged by
// the merges' ranks or, when the file has none (llama.cpp's GGUF "llama" vocabularies), by the scores of the
// merged tokens; a character with no token falls back to its bytes as <0xNN> tokens.
#include <algorithm>
#include <cstdio>

#include "kernels/base/error.h"
#include "runtime/tokenizer/bpe_merger.h"
#include "runtime/tokenizer/tokenizer_model.h"
#include "runtime/tokenizer/utf8.h"

namespace tessera::runtime {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁"

// "<0x41>" -> 0x41.
std::optional<uint8_t> parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
  unsigned value = 0;
  for (const char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') value |= static_cast<unsigned>(c - '0');
    else if (c >= 'A' && c <= 'F') value |= static_cast<unsigned>(c - 'A' + 10);
    else if (c >= 'a' && c <= 'f') value |= static_cast<unsigned>(c - 'a' + 10);
    else return std::nullopt;
  }
  return static_cast<uint8_t>(value);
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (size_t pos = 0; pos < s.size(); pos += utf8_step(s.substr(pos)).length) ++n;
  return n;
}

class SentencePieceBpe final : public TokenizerModelImpl {
 public:
  explicit SentencePieceBpe(const Vocab& vocab) : vocab_(vocab) {
    const TokenizerSpec& spec = *vocab.spec;
    byte_ids_.fill(-1);
    for (size_t id = 0; id < spec.tokens.size(); ++id) {
      const TokenType type = vocab.type(static_cast<int32_t>(id));
      if (type != TokenType::kByte && type != TokenType::kNormal) continue;
      if (const auto b = parse_byte_token(spec.tokens[id]); b && byte_ids_[*b] < 0) {
        byte_ids_[*b] = static_cast<int32_t>(id);
      }
    }
    if (!spec.merges.empty()) {
      add_ranked_merges();
    } else {
      TESSERA_CHECK(spec.scores.size() == spec.tokens.size(), "tokenizer: a SentencePiece vocabulary needs merges or ",
                    "one score per token (", spec.tokens.size(), " tokens, ", spec.scores.size(), " scores)");
      add_scored_merges();
    }
  }

  void encode(std::string_view text, bool at_text_start, std::vector<int32_t>& out) const override {
    // Hugging Face's Metaspace (prepend_scheme "first"): the prefix goes on the fragment that starts the text,
    // and not when that fragment already starts with a space (or a literal "▁").
    std::string normalized;
    normalized.reserve(text.size() + 8);
    if (vocab_.spec->add_space_prefix && at_text_start && !text.empty() && text[0] != ' ' &&
        text.substr(0, kSpaceMark.size()) != kSpaceMark) {
      normalized.append(kSpaceMark);
    }
    for (const char c : text) {
      if (c == ' ') normalized.append(kSpaceMark);
      else normalized.push_back(c);
    }
    thread_local std::vector<int32_t> symbols;
    symbols.clear();
    const std::string_view view(normalized);
    const int32_t unk = vocab_.spec->unk_id.value_or(-1);
    for (size_t pos = 0; pos < view.size();) {
      const Utf8Step step = utf8_step(view.substr(pos));
      const std::string_view ch = view.substr(pos, step.length);
      pos += step.length;
      const int32_t id = step.kind == Utf8Step::Kind::kValid ? vocab_.find(ch) : -1;
      if (id >= 0 && !vocab_.is_added(id)) {
        symbols.push_back(id);
        continue;
      }
      const bool all_bytes = std::all_of(ch.begin(), ch.end(), [&](char c) { return byte_ids_[static_cast<uint8_t>(c)] >= 0; });
      if (all_bytes) {
        for (const char c : ch) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
      } else if (unk >= 0 && (symbols.empty() || symbols.back() != unk)) {
        symbols.push_back(unk);  // consecutive unknowns fuse into one (HF fuse_unk)
      }
    }
    merger_.merge(symbols);
    out.insert(out.end(), symbols.begin(), symbols.end());
  }

  std::string token_bytes(int32_t id) const override {
    const std::string& text = vocab_.spec->tokens[static_cast<size_t>(id)];
    if (vocab_.type(id) == TokenType::kByte || vocab_.spec->token_types.empty()) {
      if (const auto b = parse_byte_token(text)) return std::string(1, static_cast<char>(*b));
    }
    std::string out;
    out.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
      if (std::string_view(text).substr(pos, kSpaceMark.size()) == kSpaceMark) {
        out.push_back(' ');
        pos += kSpaceMark.size();
      } else {
        out.push_back(text[pos++]);
      }
    }
    return out;
  }

 private:
  void add_ranked_merges() {
    int32_t rank = 0;
    for (const std::string& merge : vocab_.spec->merges) {
      const size_t space = merge.find(' ', 1);
      TESSERA_CHECK(space != std::string::npos, "tokenizer: merge #", rank, " '", merge,
                    "' is not two tokens separated by a space");
      const std::string_view text(merge);
      const int32_t left = vocab_.find(text.substr(0, space));
      const int32_t right = vocab_.find(text.substr(space + 1));
      const int32_t result = vocab_.find(std::string(text.substr(0, space)) + std::string(text.substr(space + 1)));
      // Plain text never merges into an added token (Vocab::is_added): "< s>" must not make "<s>" BOS.
      if (left >= 0 && right >= 0 && result >= 0 && !vocab_.is_added(result)) merger_.add(left, right, rank, result);
      ++rank;
    }
  }

  // No merges in the file: every split of a token into two tokens is a merge. Ranked the way transformers'
  // generate_merges orders them (merged token's score descending, then longer left part, then longer right
  // part, then token id, then the parts' ids), so ids match the reference. sentencepiece itself ranks only by
  // score and breaks ties by position, which differs only for equal scores.
  void add_scored_merges() {
    const TokenizerSpec& spec = *vocab_.spec;
    struct Candidate {
      float score;
      int32_t left_chars, right_chars, token, left, right;
    };
    std::vector<Candidate> candidates;
    for (size_t id = 0; id < spec.tokens.size(); ++id) {
      const std::string_view text = spec.tokens[id];
      if (vocab_.find(text) != static_cast<int32_t>(id)) continue;  // a duplicate text: the first id owns it
      if (vocab_.is_added(static_cast<int32_t>(id))) continue;       // plain text never merges into an added token
      std::vector<Candidate> local;
      int32_t left_chars = 0;
      const auto total_chars = static_cast<int32_t>(count_chars(text));
      for (size_t cut = 0; cut < text.size();) {
        cut += utf8_step(text.substr(cut)).length;
        ++left_chars;
        if (cut >= text.size()) break;
        const int32_t left = vocab_.find(text.substr(0, cut));
        const int32_t right = vocab_.find(text.substr(cut));
        if (left >= 0 && right >= 0) {
          local.push_back(Candidate{spec.scores[id], left_chars, total_chars - left_chars, static_cast<int32_t>(id),
                                    left, right});
        }
      }
      std::sort(local.begin(), local.end(), [](const Candidate& a, const Candidate& b) {
        return a.left != b.left ? a.left < b.left : a.right < b.right;
      });
      candidates.insert(candidates.end(), local.begin(), local.end());
    }
    std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
      if (a.score != b.score) return a.score > b.score;
      if (a.left_chars != b.left_chars) return a.left_chars > b.left_chars;
      return a.right_chars > b.right_chars;
    });
    for (size_t rank = 0; rank < candidates.size(); ++rank) {
      merger_.add(candidates[rank].left, candidates[rank].right, static_cast<int32_t>(rank), candidates[rank].token);
    }
  }

  const Vocab& vocab_;
  std::array<int32_t, 256> byte_ids_{};
  BpeMerger merger_;
};

}  // namespace

std::unique_ptr<TokenizerModelImpl> make_sentencepiece_bpe(const Vocab& vocab) {
  return std::make_unique<SentencePieceBpe>(vocab);
}

}  // namespace tessera::runtime
