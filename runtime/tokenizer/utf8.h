#pragma once
// UTF-8 scanning shared by the tokenizers and the detokenizer. Invalid input is never an error here: text that
// reaches a client is made valid by replacing each maximal invalid subpart with U+FFFD (the Unicode "substitution
// of maximal subparts" practice, which is also what Rust's from_utf8_lossy and so Hugging Face decode do), and
// the streaming form holds back only a tail that could still become a valid character.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::runtime {

// One step of a left-to-right scan starting at `text[0]`.
struct Utf8Step {
  enum class Kind { kValid, kInvalid, kTruncated };
  Kind kind = Kind::kValid;
  size_t length = 0;  // bytes consumed: the character, the maximal invalid subpart, or the truncated tail
  char32_t code_point = 0;  // for kValid
};
Utf8Step utf8_step(std::string_view text);

// `text` with every maximal invalid subpart (and a truncated tail) replaced by U+FFFD.
std::string utf8_sanitize(std::string_view text);
// How many leading bytes of `text` can be sanitized now without changing the result once more bytes arrive:
// everything except a trailing, still-completable prefix of a multi-byte character.
size_t utf8_decided_prefix(std::string_view text);
bool utf8_is_valid(std::string_view text);

void utf8_append(std::string& out, char32_t code_point);

}  // namespace tessera::runtime
