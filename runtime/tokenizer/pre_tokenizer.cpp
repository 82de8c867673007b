#define PCRE2_CODE_UNIT_WIDTH 8
#include "runtime/tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include "kernels/base/error.h"

namespace tessera::runtime {

const char* const kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// Llama-3 (tiktoken cl100k style): case-insensitive contractions, numbers in groups of up to three.
constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: as Llama-3 but every digit on its own.
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace

std::vector<std::string> pre_tokenizer_regexes(std::string_view pre) {
  if (pre == "gpt2" || pre == "gpt-2" || pre == "default" || pre.empty() || pre == "phi-2" || pre == "mpt" ||
      pre == "olmo") {
    return {kGpt2SplitRegex};
  }
  // SmolLM2 / StarCoder: HF's tokenizer.json is Sequence[Digits(individual_digits=true), ByteLevel(use_regex)]:
  // every digit is isolated first, then GPT-2's regex runs on the stretches between them (so " 12" is
  // " ", "1", "2", unlike GPT-2's " 12").
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell") {
    return {R"(\p{N})", kGpt2SplitRegex};
  }
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "dbrx" || pre == "smaug-bpe" ||
      pre == "falcon3") {
    return {kLlama3Regex};
  }
  if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2") return {kQwen2Regex};
  fail("tokenizer: unknown pre-tokenizer '", pre,
       "' (known: gpt2/default, smollm, starcoder, llama-bpe/llama3, qwen2)");
}

bool pre_tokenizer_ignores_merges(std::string_view pre) {
  return pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "falcon3";
}

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  std::string pattern;
  ~Compiled() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(const std::vector<std::string>& regexes) {
  for (const std::string& pattern : regexes) {
    auto compiled = std::make_unique<Compiled>();
    compiled->pattern = pattern;
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &error_offset, nullptr);
    if (compiled->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      fail("tokenizer: cannot compile pre-tokenizer regex '", pattern, "' at offset ", error_offset, ": ",
           reinterpret_cast<const char*>(message));
    }
    // JIT is an optimisation only: when the library has none, the interpreter gives the same matches.
    pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);
    regexes_.push_back(std::move(compiled));
  }
}

RegexSplitter::~RegexSplitter() = default;

namespace {

struct MatchData {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchData() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    // Long runs of whitespace or symbols backtrack through `\s+(?!\S)`; give the JIT room for them.
    stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (stack != nullptr) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchData() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

// Splits every piece of `in` with one regex into `out`.
void split_one(pcre2_code* code, const std::string& pattern, const std::vector<std::string_view>& in,
               std::vector<std::string_view>& out) {
  thread_local MatchData match;
  TESSERA_CHECK(match.data != nullptr && match.context != nullptr, "tokenizer: out of memory for PCRE2 match data");
  for (const std::string_view piece : in) {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
    size_t pos = 0;
    while (pos < piece.size()) {
      const int rc = pcre2_match(code, subject, piece.size(), pos, 0, match.data, match.context);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof(message));
        fail("tokenizer: pre-tokenizer regex '", pattern, "' failed on a piece of ", piece.size(),
             " bytes: ", reinterpret_cast<const char*>(message));
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
      const size_t begin = ovector[0];
      size_t end = ovector[1];
      if (begin > pos) out.push_back(piece.substr(pos, begin - pos));  // the gap (e.g. invalid UTF-8)
      if (end == begin) {
        // None of our patterns match empty, but a user-supplied one might: step one byte to make progress.
        end = begin + 1;
      }
      out.push_back(piece.substr(begin, end - begin));
      pos = end;
    }
    if (pos < piece.size()) out.push_back(piece.substr(pos));
  }
}

}  // namespace

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  if (text.empty()) return;
  std::vector<std::string_view> current{text};
  std::vector<std::string_view> next;
  for (const auto& regex : regexes_) {
    next.clear();
    split_one(regex->code, regex->pattern, current, next);
    current.swap(next);
  }
  pieces.insert(pieces.end(), current.begin(), current.end());
}

}  // namespace tessera::runtime
