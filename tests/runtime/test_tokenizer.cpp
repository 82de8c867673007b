// Tokenizer pieces on small specs built here: UTF-8 handling, the byte-level mapping, merge order, added-token
// matching, BOS/EOS, SentencePiece byte fallback, the incremental detokenizer, invalid input, long inputs.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/tokenizer/bpe_merger.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/pre_tokenizer.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"

namespace tessera::runtime {
namespace {

using Ids = std::vector<int32_t>;

// A byte-level vocabulary: the 256 byte tokens (id = byte), a few merges, and added tokens after them.
TokenizerSpec byte_level_spec() {
  TokenizerSpec spec;
  spec.model = TokenizerModel::kByteLevelBpe;
  spec.pre_tokenizer = "smollm";
  for (int b = 0; b < 256; ++b) spec.tokens.push_back(byte_level_encode(std::string(1, static_cast<char>(b))));
  // Merges, best first: "h e", "l l", "he ll", "hell o", "Ġ w" ... ids 256.. in order.
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"Ġw", "o"}, {"r", "l"}, {"Ġwo", "rl"},
      {"Ġworl", "d"}, {"a", "a"}, {"aa", "aa"}};
  for (const auto& [a, b] : merges) {
    spec.merges.push_back(a + " " + b);
    spec.tokens.push_back(a + b);
  }
  spec.tokens.push_back("<|endoftext|>");  // 267
  spec.tokens.push_back("<|im_start|>");   // 268
  spec.tokens.push_back("<|im_end|>");     // 269
  spec.tokens.push_back("<|im");           // 270: a shorter added token sharing a prefix
  spec.token_types.assign(spec.tokens.size(), TokenType::kNormal);
  for (size_t id = 267; id < 270; ++id) spec.token_types[id] = TokenType::kControl;
  spec.token_types[270] = TokenType::kUserDefined;
  spec.bos_id = 267;
  spec.eos_id = 269;
  return spec;
}

TEST(Utf8, SanitizeReplacesMaximalSubparts) {
  EXPECT_EQ(utf8_sanitize("abc"), "abc");
  EXPECT_EQ(utf8_sanitize("\xE2\x82\xAC"), "\xE2\x82\xAC");                  // €
  EXPECT_EQ(utf8_sanitize("a\xFF" "b"), "a\xEF\xBF\xBD" "b");                // invalid byte
  EXPECT_EQ(utf8_sanitize("\xE2\x82" "b"), "\xEF\xBF\xBD" "b");              // truncated 3-byte: one U+FFFD
  EXPECT_EQ(utf8_sanitize("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong: two
  EXPECT_EQ(utf8_sanitize("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: three
  EXPECT_EQ(utf8_sanitize("\xF0\x9F\x98"), "\xEF\xBF\xBD");                  // truncated at the end
  EXPECT_TRUE(utf8_is_valid("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(utf8_is_valid("\xF4\x90\x80\x80"));                           // above U+10FFFF
}

TEST(Utf8, DecidedPrefixHoldsBackOnlyCompletableTails) {
  EXPECT_EQ(utf8_decided_prefix("ab\xF0\x9F"), 2u);      // 😀 half there: wait
  EXPECT_EQ(utf8_decided_prefix("ab\xF0\x9F\x98\x80"), 6u);
  EXPECT_EQ(utf8_decided_prefix("ab\xF0" "c"), 4u);      // cannot complete any more: decided (U+FFFD, c)
  EXPECT_EQ(utf8_decided_prefix("\xFF"), 1u);
}

TEST(ByteLevel, MappingIsABijectionOnBytes) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string spelled = byte_level_encode(all);
  EXPECT_TRUE(utf8_is_valid(spelled));
  EXPECT_EQ(byte_level_decode(spelled), all);
  EXPECT_EQ(byte_level_encode(" "), "\xC4\xA0");  // Ġ
  EXPECT_EQ(byte_level_encode("\n"), "\xC4\x8A");  // Ċ
  EXPECT_EQ(byte_level_encode("A"), "A");
}

TEST(BpeMerger, LowestRankFirstThenLeftmost) {
  BpeMerger merger;
  merger.add(0, 0, 0, 10);  // a a -> A (rank 0)
  merger.add(10, 0, 1, 11);
  Ids three{0, 0, 0};
  merger.merge(three);
  EXPECT_EQ(three, (Ids{11}));  // leftmost "a a" first, then "A a"
  merger.add(1, 1, 5, 12);
  Ids mixed{1, 1, 0, 0, 1};
  merger.merge(mixed);
  EXPECT_EQ(mixed, (Ids{12, 10, 1}));
}

TEST(BpeMerger, LongRunIsNotQuadratic) {
  BpeMerger merger;
  merger.add(0, 0, 0, 1);
  merger.add(1, 1, 1, 2);
  merger.add(2, 2, 2, 3);
  Ids run(200000, 0);
  const auto start = std::chrono::steady_clock::now();
  merger.merge(run);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2.0);
  EXPECT_EQ(run, Ids(25000, 3));
}

TEST(PreTokenizer, SmolLMIsolatesDigitsThenSplitsLikeGpt2) {
  RegexSplitter splitter(pre_tokenizer_regexes("smollm"));
  std::vector<std::string_view> pieces;
  splitter.split("a 123 it's  x\n\n", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"a", " ", "1", "2", "3", " it", "'s", " ", " x", "\n\n"}));
  pieces.clear();
  RegexSplitter llama3(pre_tokenizer_regexes("llama-bpe"));
  llama3.split("12345 HELLO'S", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"123", "45", " HELLO", "'S"}));
  EXPECT_THROW(pre_tokenizer_regexes("no-such-pre"), Error);
}

TEST(PreTokenizer, InvalidUtf8StaysInThePieces) {
  RegexSplitter splitter(pre_tokenizer_regexes("gpt2"));
  std::vector<std::string_view> pieces;
  const std::string text = "ab\xFF\xFE cd\xC3";
  splitter.split(text, pieces);
  std::string joined;
  for (const auto p : pieces) joined += p;
  EXPECT_EQ(joined, text);  // every byte kept, in order
}

TEST(ByteLevelTokenizer, MergesSpecialTokensAndBosEos) {
  TokenizerSpec spec = byte_level_spec();
  spec.add_bos = true;
  Tokenizer tok(spec);
  EXPECT_EQ(tok.vocab_size(), 271);
  EXPECT_EQ(tok.encode("hello world", false), (Ids{259, 264}));
  EXPECT_EQ(tok.encode("hello world", true), (Ids{267, 259, 264}));
  // Added tokens: longest match first ("<|im_start|>" over "<|im"), inside words too.
  EXPECT_EQ(tok.encode("x<|im_start|>hello<|im_end|><|imy", false), (Ids{'x', 268, 259, 269, 270, 'y'}));
  // parse_special = false: the same text is plain bytes.
  const Ids plain = tok.encode("<|im_end|>", false, false);
  EXPECT_EQ(plain.size(), 10u);
  EXPECT_EQ(tok.decode(plain, true), "<|im_end|>");
  // Decode: control tokens skipped on request, user-defined ones kept.
  const Ids ids = tok.encode("<|im_start|>hello<|im|>", false);
  EXPECT_EQ(tok.decode(ids, false), "<|im_start|>hello<|im|>");
  EXPECT_EQ(tok.decode(ids, true), "hello<|im|>");
  EXPECT_TRUE(tok.is_special(268));
  EXPECT_FALSE(tok.is_special(270));
  EXPECT_EQ(tok.end_of_generation_ids(), (Ids{269, 267}));
  EXPECT_THROW(tok.decode(Ids{271}, false), Error);
  EXPECT_THROW(tok.token_to_piece(-1), Error);
}

TEST(ByteLevelTokenizer, AnyBytesRoundTripToTheirValidForm) {
  Tokenizer tok(byte_level_spec());
  const std::vector<std::string> inputs = {"", "\xFF", "a\xC3", "\xED\xA0\x80", "\xF0\x9F\x98\x80\xF0\x9F",
                                           std::string("nul\0byte", 8), "caf\xC3\xA9 \xE2\x82\xAC"};
  for (const std::string& text : inputs) {
    const Ids ids = tok.encode(text, false);
    EXPECT_EQ(tok.decode(ids, false), utf8_sanitize(text)) << text;
    std::string bytes;
    for (const int32_t id : ids) bytes += tok.token_to_piece(id);
    EXPECT_EQ(bytes, text);  // the ids hold the exact bytes, invalid ones included
  }
}

TEST(ByteLevelTokenizer, LongRunsOfOneCharacter) {
  Tokenizer tok(byte_level_spec());
  const std::string spaces(100000, ' ');
  const std::string as(100000, 'a');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(tok.decode(tok.encode(spaces, false), false), spaces);
  const Ids a_ids = tok.encode(as, false);
  EXPECT_EQ(a_ids, Ids(25000, 266));  // "aaaa" x 25000
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
}

TEST(IncrementalDetokenizer, NeverEmitsHalfACharacter) {
  Tokenizer tok(byte_level_spec());
  const std::string text = "h\xC3\xA9 \xF0\x9F\x98\x80!";  // "hé 😀!" as single-byte tokens
  const Ids ids = tok.encode(text, false);
  IncrementalDetokenizer stream(tok);
  std::vector<std::string> outputs;
  for (const int32_t id : ids) outputs.push_back(stream.push(id));
  outputs.push_back(stream.flush());
  std::string joined;
  for (const std::string& out : outputs) {
    EXPECT_TRUE(utf8_is_valid(out)) << out;
    joined += out;
  }
  EXPECT_EQ(joined, text);
  // The emoji's four byte tokens: nothing until the last one.
  EXPECT_EQ(outputs[4], "");
  EXPECT_EQ(outputs[5], "");
  EXPECT_EQ(outputs[6], "");
  EXPECT_EQ(outputs[7], "\xF0\x9F\x98\x80");
}

TEST(IncrementalDetokenizer, InvalidAndTruncatedBytesBecomeReplacementCharacters) {
  Tokenizer tok(byte_level_spec());
  IncrementalDetokenizer stream(tok);
  std::string out = stream.push(0xE2);  // a 3-byte lead: held
  EXPECT_EQ(out, "");
  out += stream.push('x');              // cannot complete now
  EXPECT_EQ(out, "\xEF\xBF\xBDx");
  EXPECT_EQ(stream.push(0xF0), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");  // truncated at the end
  EXPECT_EQ(stream.flush(), "");
}

// A SentencePiece vocabulary: specials, 256 byte tokens, characters and merged pieces with scores.
TokenizerSpec sentencepiece_spec() {
  TokenizerSpec spec;
  spec.model = TokenizerModel::kSentencePieceBpe;
  spec.tokens = {"<unk>", "<s>", "</s>"};
  spec.token_types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    spec.tokens.emplace_back(name);
    spec.token_types.push_back(TokenType::kByte);
  }
  spec.scores.assign(spec.tokens.size(), 0.0f);
  // id 259..: pieces and their scores (higher merges first).
  const std::vector<std::pair<std::string, float>> pieces = {
      {"\xE2\x96\x81", -1}, {"h", -2}, {"i", -3}, {"e", -4}, {"y", -5}, {"\xE2\x96\x81h", -6}, {"\xE2\x96\x81hi", -7},
      {"he", -8}, {"hey", -9}, {"\xC3\xA9", -10}};
  for (const auto& [text, score] : pieces) {
    spec.tokens.push_back(text);
    spec.token_types.push_back(TokenType::kNormal);
    spec.scores.push_back(score);
  }
  spec.unk_id = 0;
  spec.bos_id = 1;
  spec.eos_id = 2;
  spec.add_bos = true;
  spec.add_space_prefix = true;
  return spec;
}

TEST(SentencePieceTokenizer, ScoresPrefixAndByteFallback) {
  Tokenizer tok(sentencepiece_spec());
  // "hi" -> "▁hi" (prefix), merged by score.
  EXPECT_EQ(tok.encode("hi", false), (Ids{265}));
  EXPECT_EQ(tok.encode("hi", true), (Ids{1, 265}));
  // "hey hi": "▁hey▁hi" -> ▁h e y ▁hi: "▁h" (-6) beats "he" (-8), then ▁hi.
  EXPECT_EQ(tok.encode("hey hi", false), (Ids{264, 262, 263, 265}));
  // Unknown character: its UTF-8 bytes as <0xNN> tokens (ids 3 + byte).
  EXPECT_EQ(tok.encode("\xE2\x82\xAC", false), (Ids{259, 3 + 0xE2, 3 + 0x82, 3 + 0xAC}));
  EXPECT_EQ(tok.decode(tok.encode("h\xE2\x82\xAC\xC3\xA9", true), true), "h\xE2\x82\xAC\xC3\xA9");
  // Text starting with a space gets no second prefix; decode drops one leading space.
  EXPECT_EQ(tok.encode(" hi", false), (Ids{265}));
  EXPECT_EQ(tok.decode(Ids{265}, false), "hi");
  // After an added token no prefix either (the fragment does not start the text).
  EXPECT_EQ(tok.encode("<s>hi", false), (Ids{1, 260, 261}));
  // Invalid UTF-8 falls back to bytes as well, and decodes to its valid form.
  EXPECT_EQ(tok.decode(tok.encode("h\xFF", false), false), "h\xEF\xBF\xBD");
}

TEST(SentencePieceTokenizer, DetokenizerStripsOnlyTheSequenceStart) {
  Tokenizer tok(sentencepiece_spec());
  const Ids ids = tok.encode("hi hi", false);  // ▁hi ▁hi
  IncrementalDetokenizer start(tok);
  std::string text;
  for (const int32_t id : ids) text += start.push(id);
  EXPECT_EQ(text + start.flush(), "hi hi");
  IncrementalDetokenizer continuation(tok, true, /*sequence_start=*/false);
  EXPECT_EQ(continuation.push(265), " hi");  // a generated "▁hi" keeps its space
}

TEST(TokenizerSpecChecks, BadSpecsAreErrors) {
  TokenizerSpec empty;
  EXPECT_THROW(Tokenizer{empty}, Error);
  TokenizerSpec spec = byte_level_spec();
  spec.bos_id = 100000;
  EXPECT_THROW(Tokenizer{spec}, Error);
  spec = byte_level_spec();
  spec.token_types.pop_back();
  EXPECT_THROW(Tokenizer{spec}, Error);
  spec = byte_level_spec();
  spec.merges.push_back("nospace");
  EXPECT_THROW(Tokenizer{spec}, Error);
  spec = byte_level_spec();
  spec.bos_id.reset();
  spec.add_bos = true;
  EXPECT_THROW(Tokenizer{spec}, Error);
  TokenizerSpec spm = sentencepiece_spec();
  spm.scores.clear();
  EXPECT_THROW(Tokenizer{spm}, Error);  // neither merges nor scores
}

}  // namespace
}  // namespace tessera::runtime
