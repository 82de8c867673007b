#include <gtest/gtest.h>

#include <filesystem>

#include "kernels/base/error.h"
#include "runtime/tokenizer/tokenizer_spec_gguf.h"
#include "tests/runtime/gguf_image_builder.h"
#include "tests/support/error_text.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

using testing::GgufImageBuilder;

TEST(TokenizerSpecGguf, SmolLm2) {
  const auto path = testing::default_model_path();
  TESSERA_REQUIRE_MODEL(path);
  const auto file = GgufFile::open(path);
  const TokenizerSpec spec = tokenizer_spec_from_gguf(*file);
  EXPECT_EQ(spec.model, TokenizerModel::kByteLevelBpe);
  EXPECT_EQ(spec.pre_tokenizer, "smollm");
  ASSERT_EQ(spec.tokens.size(), 49152u);
  EXPECT_EQ(spec.tokens[0], "<|endoftext|>");
  EXPECT_EQ(spec.tokens[1], "<|im_start|>");
  EXPECT_EQ(spec.tokens[2], "<|im_end|>");
  EXPECT_EQ(spec.token_types.size(), 49152u);
  EXPECT_EQ(spec.token_types[1], TokenType::kControl);
  EXPECT_EQ(spec.merges.size(), 48900u);
  EXPECT_EQ(spec.merges[0], "\xC4\xA0 t");  // "Ġ t": GPT-2's byte-level space
  EXPECT_TRUE(spec.scores.empty());
  EXPECT_EQ(spec.bos_id, 1);
  EXPECT_EQ(spec.eos_id, 2);
  EXPECT_EQ(spec.unk_id, 0);
  EXPECT_EQ(spec.pad_id, 2);
  EXPECT_FALSE(spec.add_bos);
  EXPECT_FALSE(spec.add_eos);
  EXPECT_FALSE(spec.add_space_prefix);
  EXPECT_FALSE(spec.ignore_merges);
  ASSERT_TRUE(spec.chat_template.has_value());
  EXPECT_NE(spec.chat_template->find("<|im_start|>"), std::string::npos);
}

GgufImageBuilder spm_builder() {
  GgufImageBuilder b;
  b.add_string("tokenizer.ggml.model", "llama");
  b.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81hi", "<0x0A>"});
  b.add_array<float>("tokenizer.ggml.scores", 6, {0.0f, 0.0f, 0.0f, -1.5f, 0.0f});
  b.add_array<int32_t>("tokenizer.ggml.token_type", 5, {2, 3, 3, 1, 6});
  b.add_u32("tokenizer.ggml.bos_token_id", 1);
  b.add_u32("tokenizer.ggml.eos_token_id", 2);
  return b;
}

TEST(TokenizerSpecGguf, SentencePieceDefaults) {
  const auto image = spm_builder().build();
  const TokenizerSpec spec = tokenizer_spec_from_gguf(*GgufFile::parse(image, "spm.gguf"));
  EXPECT_EQ(spec.model, TokenizerModel::kSentencePieceBpe);
  EXPECT_EQ(spec.pre_tokenizer, "default");
  EXPECT_EQ(spec.scores, (std::vector<float>{0.0f, 0.0f, 0.0f, -1.5f, 0.0f}));
  EXPECT_EQ(spec.token_types, (std::vector<TokenType>{TokenType::kUnknown, TokenType::kControl, TokenType::kControl,
                                                      TokenType::kNormal, TokenType::kByte}));
  EXPECT_TRUE(spec.merges.empty());
  EXPECT_EQ(spec.bos_id, 1);
  EXPECT_EQ(spec.eos_id, 2);
  EXPECT_EQ(spec.unk_id, std::nullopt);
  EXPECT_TRUE(spec.add_bos);           // llama.cpp's default for SentencePiece
  EXPECT_TRUE(spec.add_space_prefix);  // likewise
  EXPECT_FALSE(spec.chat_template.has_value());
}

TEST(TokenizerSpecGguf, Llama3FamilyIgnoresMergesAndAddsBos) {
  GgufImageBuilder b;
  b.add_string("tokenizer.ggml.model", "gpt2");
  b.add_string("tokenizer.ggml.pre", "llama-bpe");
  b.add_string_array("tokenizer.ggml.tokens", {"a", "b", "ab"});
  b.add_string_array("tokenizer.ggml.merges", {"a b"});
  const auto image = b.build();
  const TokenizerSpec spec = tokenizer_spec_from_gguf(*GgufFile::parse(image, "llama3.gguf"));
  EXPECT_TRUE(spec.ignore_merges);
  EXPECT_TRUE(spec.add_bos);
  EXPECT_FALSE(spec.add_space_prefix);
  EXPECT_EQ(spec.merges, (std::vector<std::string>{"a b"}));
}

TEST(TokenizerSpecGguf, RejectsInconsistentVocabularies) {
  auto error_of = [](const GgufImageBuilder& b) {
    const auto image = b.build();
    return testing::error_of([&] { tokenizer_spec_from_gguf(*GgufFile::parse(image, "vocab.gguf")); });
  };
  GgufImageBuilder no_model;
  EXPECT_NE(error_of(no_model).find("tokenizer.ggml.model"), std::string::npos);
  GgufImageBuilder bert = spm_builder();
  bert.add_string("tokenizer.ggml.model", "bert");  // duplicate key: the parser refuses it first
  EXPECT_NE(error_of(bert).find("duplicate"), std::string::npos);
  GgufImageBuilder t5;
  t5.add_string("tokenizer.ggml.model", "t5");
  t5.add_string_array("tokenizer.ggml.tokens", {"a"});
  EXPECT_NE(error_of(t5).find("'t5' is not supported"), std::string::npos);
  GgufImageBuilder bad_id = spm_builder();
  bad_id.add_u32("tokenizer.ggml.padding_token_id", 5);
  EXPECT_NE(error_of(bad_id).find("padding_token_id = 5"), std::string::npos);
  GgufImageBuilder short_scores;
  short_scores.add_string("tokenizer.ggml.model", "llama");
  short_scores.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
  short_scores.add_array<float>("tokenizer.ggml.scores", 6, {0.0f});
  EXPECT_NE(error_of(short_scores).find("scores has 1 entries for 2 tokens"), std::string::npos);
  GgufImageBuilder bad_type;
  bad_type.add_string("tokenizer.ggml.model", "llama");
  bad_type.add_string_array("tokenizer.ggml.tokens", {"a"});
  bad_type.add_array<int32_t>("tokenizer.ggml.token_type", 5, {9});
  EXPECT_NE(error_of(bad_type).find("token_type[0] = 9"), std::string::npos);
  GgufImageBuilder bpe_without_merges;
  bpe_without_merges.add_string("tokenizer.ggml.model", "gpt2");
  bpe_without_merges.add_string_array("tokenizer.ggml.tokens", {"a"});
  EXPECT_NE(error_of(bpe_without_merges).find("merges"), std::string::npos);
}

}  // namespace
}  // namespace tessera::runtime
