#pragma once
// The regex pre-tokenizer of byte-level BPE: text is cut into pieces by a sequence of regexes, each applied to
// every piece the previous one produced (Hugging Face's Sequence[Split(..., Isolated)] / llama.cpp's
// regex_exprs). Matches and the gaps between them both become pieces, so no byte is ever dropped; invalid
// UTF-8 never matches and ends up in a gap of its own.
//
// Regexes are compiled with PCRE2 in UTF + UCP mode (real Unicode classes for \p{L}, \p{N}, \s) with
// PCRE2_MATCH_INVALID_UTF, and JIT-compiled where the library supports it.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::runtime {

// The split regexes for a GGUF `tokenizer.ggml.pre` name, in the form Hugging Face's tokenizer.json for that
// family uses. Throws tessera::Error for a name not known here.
std::vector<std::string> pre_tokenizer_regexes(std::string_view pre_name);
// Whether that family's BPE model takes a piece that is a whole vocabulary token as is (HF `ignore_merges`).
bool pre_tokenizer_ignores_merges(std::string_view pre_name);
// GPT-2's ByteLevel regex (what HF's ByteLevel pre-tokenizer uses when use_regex is true).
extern const char* const kGpt2SplitRegex;

class RegexSplitter {
 public:
  explicit RegexSplitter(const std::vector<std::string>& regexes);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Appends the pieces of `text` (views into it, in order, covering it exactly) to `pieces`.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> regexes_;
};

}  // namespace tessera::runtime
