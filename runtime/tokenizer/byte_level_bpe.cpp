// Byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM2): regex pre-tokenizer, then every piece's bytes are spelled as
// byte-level characters and merged by rank. Any byte sequence, valid UTF-8 or not, maps to tokens this way.
#include <array>
#include <mutex>

#include "kernels/base/error.h"
#include "runtime/tokenizer/bpe_merger.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/pre_tokenizer.h"
#include "runtime/tokenizer/tokenizer_model.h"
#include "runtime/tokenizer/utf8.h"

namespace tessera::runtime {

namespace {

class ByteLevelBpe final : public TokenizerModelImpl {
 public:
  explicit ByteLevelBpe(const Vocab& vocab)
      : vocab_(vocab),
        splitter_(vocab.spec->pre_regexes.empty() ? pre_tokenizer_regexes(vocab.spec->pre_tokenizer)
                                                  : vocab.spec->pre_regexes),
        ignore_merges_(vocab.spec->ignore_merges || pre_tokenizer_ignores_merges(vocab.spec->pre_tokenizer)) {
    const TokenizerSpec& spec = *vocab.spec;
    for (int b = 0; b < 256; ++b) {
      std::string spelled;
      utf8_append(spelled, byte_to_unicode(static_cast<uint8_t>(b)));
      byte_ids_[static_cast<size_t>(b)] = vocab.find(spelled);
    }
    for (size_t id = 0; id < spec.tokens.size(); ++id) {
      if (vocab.type(static_cast<int32_t>(id)) != TokenType::kNormal) continue;
      bytes_to_id_.emplace(byte_level_decode(spec.tokens[id]), static_cast<int32_t>(id));
    }
    int32_t rank = 0;
    for (const std::string& merge : spec.merges) {
      const size_t space = merge.find(' ', 1);  // the pair's halves never contain a space in this spelling
      TESSERA_CHECK(space != std::string::npos, "tokenizer: merge #", rank, " '", merge,
                    "' is not two tokens separated by a space");
      const std::string_view text(merge);
      const int32_t left = vocab.find(text.substr(0, space));
      const int32_t right = vocab.find(text.substr(space + 1));
      const int32_t result = vocab.find(std::string(text.substr(0, space)) + std::string(text.substr(space + 1)));
      // HF refuses merges whose parts or result are not tokens; such a merge can never fire, so skip it. Plain
      // text never merges into an added token (Vocab::is_added).
      if (left >= 0 && right >= 0 && result >= 0 && !vocab.is_added(result)) merger_.add(left, right, rank, result);
      ++rank;
    }
  }

  void encode(std::string_view text, bool /*at_text_start*/, std::vector<int32_t>& out) const override {
    thread_local std::vector<std::string_view> pieces;
    pieces.clear();
    splitter_.split(text, pieces);
    for (const std::string_view piece : pieces) encode_piece(piece, out);
  }

  std::string token_bytes(int32_t id) const override {
    return byte_level_decode(vocab_.spec->tokens[static_cast<size_t>(id)]);
  }

 private:
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
    if (ignore_merges_) {
      const auto it = bytes_to_id_.find(piece);
      if (it != bytes_to_id_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    // Words repeat a lot in real text; the cache skips the merge loop for them. Bounded: cleared when full.
    {
      std::lock_guard lock(cache_mutex_);
      const auto it = cache_.find(piece);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    thread_local std::vector<int32_t> symbols;
    symbols.clear();
    for (const char c : piece) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      // A vocabulary without this byte's token (never the case for real byte-level vocabularies): unknown.
      if (id >= 0) {
        symbols.push_back(id);
      } else if (vocab_.spec->unk_id) {
        symbols.push_back(*vocab_.spec->unk_id);
      }
    }
    merger_.merge(symbols);
    out.insert(out.end(), symbols.begin(), symbols.end());
    if (piece.size() <= kMaxCachedPiece) {
      std::lock_guard lock(cache_mutex_);
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();
      cache_.emplace(std::string(piece), symbols);
    }
  }

  static constexpr size_t kMaxCachedPiece = 64;
  static constexpr size_t kMaxCacheEntries = 1 << 16;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  const Vocab& vocab_;
  RegexSplitter splitter_;
  bool ignore_merges_;
  std::array<int32_t, 256> byte_ids_{};
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> bytes_to_id_;
  BpeMerger merger_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace

std::unique_ptr<TokenizerModelImpl> make_byte_level_bpe(const Vocab& vocab) {
  return std::make_unique<ByteLevelBpe>(vocab);
}

}  // namespace tessera::runtime
