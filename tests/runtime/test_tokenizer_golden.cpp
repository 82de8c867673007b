// Tokenizers against Hugging Face: every string of tests/fixtures/tokenizer/corpus.json must encode to the ids
// HF produced (scripts/golden/tokenizer_golden.py), decode like HF, round-trip, and stream through the
// incremental detokenizer to the same text. Sources: the SmolLM2 GGUF, llama.cpp's vocab-only GGUFs (Llama-2
// SentencePiece, Llama-3, Qwen2; fetched by scripts/fetch-vocabs.sh) and two small tokenizer.json files.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "kernels/base/error.h"
#include "runtime/model/gguf_file.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_spec_gguf.h"
#include "runtime/tokenizer/tokenizer_spec_hf.h"
#include "tests/support/json_file.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fixtures() { return testing::fixture("tokenizer"); }

std::string show(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? "," : "") << ids[i];
  out << ']';
  return out.str();
}

// The whole golden comparison for one tokenizer; failures name the corpus index and the string.
void check_against_golden(const Tokenizer& tok, const fs::path& golden_file) {
  const json corpus = testing::read_json(fixtures() / "corpus.json").at("strings");
  const json cases = testing::read_json(golden_file).at("cases");
  ASSERT_EQ(corpus.size(), cases.size()) << golden_file;
  int mismatches = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string text = corpus[i].get<std::string>();
    const json& c = cases[i];
    const auto expected = c.at("ids").get<std::vector<int32_t>>();
    const auto expected_full = c.at("ids_with_special").get<std::vector<int32_t>>();
    const std::vector<int32_t> ids = tok.encode(text, false);
    if (ids != expected && ++mismatches <= 8) {
      ADD_FAILURE() << golden_file.filename() << " #" << i << " " << json(text).dump() << "\n  ours " << show(ids)
                    << "\n  HF   " << show(expected);
    }
    EXPECT_EQ(tok.encode(text, true), expected_full) << "#" << i << " with special tokens";
    EXPECT_EQ(tok.decode(expected_full, false), c.at("decoded").get<std::string>()) << "#" << i;
    const std::string skipped = tok.decode(expected_full, true);
    EXPECT_EQ(skipped, c.at("decoded_skip_special").get<std::string>()) << "#" << i;

    // Round trip. SentencePiece (HF's rule): a literal "▁" in the text reads back as a space, and decode drops
    // one leading space, which encode's prefix put there unless the text already started with a space.
    std::string round = text;
    if (tok.model() == TokenizerModel::kSentencePieceBpe) {
      for (size_t at = 0; (at = round.find("\xE2\x96\x81", at)) != std::string::npos;) round.replace(at, 3, " ");
      if (tok.strips_leading_space() && !round.empty() && round[0] == ' ') round = round.substr(1);
    }
    EXPECT_EQ(tok.decode(ids, false), round) << "#" << i << " round trip";

    // Streaming, one id at a time, both skip modes.
    for (const bool skip : {false, true}) {
      IncrementalDetokenizer stream(tok, skip);
      std::string streamed;
      for (const int32_t id : expected_full) streamed += stream.push(id);
      streamed += stream.flush();
      EXPECT_EQ(streamed, tok.decode(expected_full, skip)) << "#" << i << " streamed, skip=" << skip;
    }
  }
  EXPECT_EQ(mismatches, 0) << golden_file.filename() << ": " << mismatches << " of " << corpus.size()
                           << " strings encode differently from HF";
}

std::unique_ptr<Tokenizer> from_gguf(const fs::path& path) {
  const auto file = GgufFile::open(path);
  return std::make_unique<Tokenizer>(tokenizer_spec_from_gguf(*file));
}

TEST(TokenizerGolden, SmolLM2) {
  const fs::path model = testing::default_model_path();
  TESSERA_REQUIRE_MODEL(model);
  const auto start = std::chrono::steady_clock::now();
  const auto tok = from_gguf(model);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0) << "opening SmolLM2 and building its tokenizer";
  EXPECT_EQ(tok->vocab_size(), 49152);
  EXPECT_EQ(tok->model(), TokenizerModel::kByteLevelBpe);
  EXPECT_EQ(tok->encode("<|im_start|>", false), std::vector<int32_t>{1});
  check_against_golden(*tok, fixtures() / "smollm2.json");
}

class VocabGolden : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(VocabGolden, MatchesHuggingFace) {
  const fs::path path = testing::vocab_path(GetParam().first);
  TESSERA_REQUIRE_VOCAB(path);
  const auto tok = from_gguf(path);
  check_against_golden(*tok, fixtures() / GetParam().second);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, VocabGolden,
                         ::testing::Values(std::make_pair("ggml-vocab-llama-spm.gguf", "llama_spm.json"),
                                           std::make_pair("ggml-vocab-llama-bpe.gguf", "llama_bpe.json"),
                                           std::make_pair("ggml-vocab-qwen2.gguf", "qwen2.json")),
                         [](const auto& param_info) {
                           std::string name = param_info.param.second;
                           return name.substr(0, name.find('.'));
                         });

TEST(TokenizerGolden, HfJsonByteLevel) {
  const fs::path dir = fixtures() / "hf_bytelevel";
  const TokenizerSpec spec = tokenizer_spec_from_hf_json(dir / "tokenizer.json", dir / "tokenizer_config.json");
  EXPECT_EQ(spec.model, TokenizerModel::kByteLevelBpe);
  ASSERT_EQ(spec.pre_regexes.size(), 2u);  // Digits, then ByteLevel's regex
  ASSERT_TRUE(spec.chat_template.has_value());
  Tokenizer tok(spec);
  const auto think = tok.find_token("<think>");
  ASSERT_TRUE(think.has_value());
  EXPECT_FALSE(tok.is_special(*think));  // user-defined: matched whole, not skipped by decode
  EXPECT_TRUE(tok.is_special(*tok.find_token("<|im_start|>")));
  check_against_golden(tok, dir / "golden.json");
}

TEST(TokenizerGolden, HfJsonMetaspace) {
  const fs::path dir = fixtures() / "hf_metaspace";
  const TokenizerSpec spec = tokenizer_spec_from_hf_json(dir / "tokenizer.json", dir / "tokenizer_config.json");
  EXPECT_EQ(spec.model, TokenizerModel::kSentencePieceBpe);
  EXPECT_TRUE(spec.add_bos);
  EXPECT_TRUE(spec.add_space_prefix);
  Tokenizer tok(spec);
  check_against_golden(tok, dir / "golden.json");
}

// Found by fuzz_chat_template: this vocabulary's merges "s >" and "< s>" spell "<s>", so plain text "<s>" between
// two invalid UTF-8 bytes (nothing else to merge with) became BOS, a control token forged by message content.
// Plain text never merges into an added token; parsed as specials, "<s>" still is BOS.
TEST(TokenizerGolden, PlainTextNeverMergesIntoASpecialToken) {
  const fs::path dir = fixtures() / "hf_metaspace";
  Tokenizer tok(tokenizer_spec_from_hf_json(dir / "tokenizer.json", dir / "tokenizer_config.json"));
  const int32_t bos = *tok.find_token("<s>");
  for (const std::string text : {"\xc7<s>\xc7", "<s>", "</s>", "x <s> y", "\xc7</s>\xc7<unk>"}) {
    std::vector<int32_t> ids;
    tok.encode_plain(text, false, ids);
    for (const int32_t id : ids) EXPECT_FALSE(tok.is_special(id)) << show(ids) << " for " << text;
  }
  EXPECT_EQ(tok.encode("<s>", false, true), (std::vector<int32_t>{bos}));
}

TEST(TokenizerHfJson, UnsupportedPipelinesAreErrors) {
  const fs::path dir = fs::temp_directory_path() / "tessera_tok_hf_json";
  fs::create_directories(dir);
  const auto write = [&](const std::string& body) {
    std::ofstream(dir / "tokenizer.json") << body;
    return dir / "tokenizer.json";
  };
  const std::string model = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  EXPECT_THROW(tokenizer_spec_from_hf_json(write(R"({"normalizer": {"type": "NFC"}, )" + model + "}")), Error);
  EXPECT_THROW(tokenizer_spec_from_hf_json(write(R"({"pre_tokenizer": {"type": "Whitespace"}, )" + model + "}")),
               Error);
  EXPECT_THROW(tokenizer_spec_from_hf_json(write(R"({"model": {"type": "WordPiece", "vocab": {}}})")), Error);
  EXPECT_THROW(tokenizer_spec_from_hf_json(write("{not json")), Error);
  EXPECT_THROW(tokenizer_spec_from_hf_json(dir / "missing.json"), Error);
  // The minimal supported one works, with merges as pairs.
  const auto path = write(R"({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
      "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}})");
  Tokenizer tok(tokenizer_spec_from_hf_json(path));
  EXPECT_EQ(tok.encode("abab", false), (std::vector<int32_t>{2, 2}));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tessera::runtime
