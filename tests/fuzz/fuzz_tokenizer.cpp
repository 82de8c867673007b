// Fuzzes the byte-level BPE tokenizer (SmolLM2-like: "smollm" pre-tokenizer, added tokens) and the incremental
// detokenizer on arbitrary bytes. The tokenizer is built once from a small spec made here, so the fuzzer needs no
// model file. Defined behaviour checked on every input, valid UTF-8 or not:
//   - encode never throws; every id is in the vocabulary;
//   - the ids' pieces concatenate back to the exact input bytes (byte-level BPE loses nothing);
//   - decode(encode(x)) == utf8_sanitize(x) (invalid sequences become U+FFFD), and is valid UTF-8;
//   - streaming the ids through IncrementalDetokenizer yields the same text, every chunk valid UTF-8.
// The first input byte picks parse_special, so added-token matching is fuzzed both ways.
// Seeds: tests/fuzz/corpus/fuzz_tokenizer/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"

namespace {

using tessera::runtime::Tokenizer;
using tessera::runtime::TokenizerSpec;

// 256 byte tokens, merges that build a few words (with chains, so the merge loop has work), and added tokens.
TokenizerSpec fuzz_spec() {
  using tessera::runtime::byte_level_encode;
  TokenizerSpec spec;
  spec.model = tessera::runtime::TokenizerModel::kByteLevelBpe;
  spec.pre_tokenizer = "smollm";
  for (int b = 0; b < 256; ++b) spec.tokens.push_back(byte_level_encode(std::string(1, static_cast<char>(b))));
  const char* words[] = {"the", " the", "ing", " and", "tion", "  ", "    ", "\n\n", "er", "re", "\xC3\xA9",
                         "\xE4\xBD\xA0\xE5\xA5\xBD", "\xF0\x9F\x98\x80", "<|", "|>", "aaaa"};
  for (const char* word : words) {
    // Left-to-right chain: w[0..1], w[0..2], ... each a merge of the previous and the next byte.
    const std::string bytes = word;
    std::string prefix = bytes.substr(0, 1);
    for (size_t i = 1; i < bytes.size(); ++i) {
      const std::string next = prefix + bytes[i];
      const std::string merge = byte_level_encode(prefix) + " " + byte_level_encode(bytes.substr(i, 1));
      spec.merges.push_back(merge);
      spec.tokens.push_back(byte_level_encode(next));
      prefix = next;
    }
  }
  spec.token_types.assign(spec.tokens.size(), tessera::runtime::TokenType::kNormal);
  for (const char* added : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    spec.tokens.emplace_back(added);
    spec.token_types.push_back(tessera::runtime::TokenType::kControl);
  }
  spec.tokens.emplace_back("<think>");
  spec.token_types.push_back(tessera::runtime::TokenType::kUserDefined);
  spec.bos_id = static_cast<int>(spec.tokens.size()) - 4;
  spec.eos_id = static_cast<int>(spec.tokens.size()) - 2;
  return spec;
}

void check(bool condition) {
  if (!condition) std::abort();  // a broken invariant is a finding: let libFuzzer report it
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer tokenizer(fuzz_spec());
  if (size == 0) return 0;
  const bool parse_special = (data[0] & 1) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  const std::vector<int32_t> ids = tokenizer.encode(text, false, parse_special);
  std::string bytes;
  for (const int32_t id : ids) {
    check(id >= 0 && id < tokenizer.vocab_size());
    bytes += tokenizer.token_to_piece(id);
  }
  check(bytes == text);
  const std::string decoded = tokenizer.decode(ids, false);
  check(decoded == tessera::runtime::utf8_sanitize(text));
  check(tessera::runtime::utf8_is_valid(decoded));

  tessera::runtime::IncrementalDetokenizer stream(tokenizer, false);
  std::string streamed;
  for (const int32_t id : ids) {
    const std::string chunk = stream.push(id);
    check(tessera::runtime::utf8_is_valid(chunk));
    streamed += chunk;
  }
  streamed += stream.flush();
  check(streamed == decoded);
  return 0;
}
