// Chat templates against transformers' apply_chat_template with the real templates of each family
// (tests/fixtures/tokenizer/chat_templates.json from scripts/golden/tokenizer_chat_golden.py): the family is
// detected from the template text, and every conversation renders to the same text, or is rejected where the
// Jinja template raises.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "kernels/base/error.h"
#include "runtime/chat/chat_template.h"
#include "runtime/model/gguf_file.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_spec_gguf.h"
#include "tests/support/json_file.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json golden() { return testing::read_json(testing::fixture("tokenizer/chat_templates.json")); }

std::vector<ChatMessage> messages_of(const json& list) {
  std::vector<ChatMessage> out;
  for (const json& m : list) out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return out;
}

TEST(ChatTemplate, DetectsFamiliesFromRealTemplates) {
  const json g = golden();
  const std::map<std::string, ChatFamily> expected = {{"smollm2", ChatFamily::kChatMl},
                                                      {"qwen2", ChatFamily::kChatMl},
                                                      {"llama3", ChatFamily::kLlama3},
                                                      {"llama2", ChatFamily::kLlama2},
                                                      {"mistral", ChatFamily::kMistral}};
  for (const auto& [name, family] : expected) {
    EXPECT_EQ(detect_chat_family(g.at("templates").at(name).at("text").get<std::string>()), family) << name;
  }
  const json& t = g.at("templates");
  const auto smol = ChatTemplate::from_text(t.at("smollm2").at("text").get<std::string>(), "", "");
  EXPECT_EQ(smol.default_system_prompt(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  const auto qwen = ChatTemplate::from_text(t.at("qwen2").at("text").get<std::string>(), "", "");
  EXPECT_EQ(qwen.default_system_prompt(), "You are a helpful assistant");
}

TEST(ChatTemplate, RendersLikeTransformers) {
  const json g = golden();
  size_t checked = 0;
  for (const json& c : g.at("cases")) {
    const std::string name = c.at("template").get<std::string>();
    const json& t = g.at("templates").at(name);
    const auto tmpl = ChatTemplate::from_text(t.at("text").get<std::string>(), t.at("bos").get<std::string>(),
                                              t.at("eos").get<std::string>());
    const auto messages = messages_of(c.at("messages"));
    const bool gen = c.at("add_generation_prompt").get<bool>();
    const std::string where = name + " " + c.at("messages").dump() + (gen ? " +gen" : "");
    if (c.at("rendered").is_null()) {
      EXPECT_THROW(tmpl.render(messages, gen), Error) << where;
    } else {
      EXPECT_EQ(tmpl.render(messages, gen), c.at("rendered").get<std::string>()) << where;
    }
    ++checked;
  }
  EXPECT_GE(checked, 100u);
}

TEST(ChatTemplate, UnknownTemplateIsAClearErrorAndFamilyOverrides) {
  const std::string jinja = "{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}"
                            "<end_of_turn>\n{% endfor %}";
  try {
    detect_chat_family(jinja);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(jinja.substr(0, 60)), std::string::npos) << message;
    EXPECT_NE(message.find("..."), std::string::npos) << message;
  }
  const auto forced = ChatTemplate::from_text(jinja, "<s>", "</s>", ChatFamily::kMistral);
  EXPECT_EQ(forced.family(), ChatFamily::kMistral);
  const std::vector<ChatMessage> hi = {{"user", "hi"}};
  EXPECT_EQ(forced.render(hi, true), "<s>[INST] hi [/INST]");
  EXPECT_EQ(parse_chat_family("llama3"), ChatFamily::kLlama3);
  EXPECT_THROW(parse_chat_family("gemma"), Error);
}

TEST(ChatTemplate, SmolLM2PromptFromTheModelFile) {
  const fs::path path = testing::default_model_path();
  TESSERA_REQUIRE_MODEL(path);
  const Tokenizer tok(tokenizer_spec_from_gguf(*GgufFile::open(path)));
  const auto tmpl = ChatTemplate::for_tokenizer(tok);
  EXPECT_EQ(tmpl.family(), ChatFamily::kChatMl);
  const std::vector<ChatMessage> conversation = {{"user", "What is the capital of France?"}};
  const std::string prompt = tmpl.render(conversation, true);
  const std::vector<int32_t> ids = tok.encode(prompt, false);
  // <|im_start|> (1) opens the default system turn; the prompt ends with "<|im_start|>assistant\n".
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 1);
  const auto last_start = std::find(ids.rbegin(), ids.rend(), 1);
  ASSERT_NE(last_start, ids.rend());
  const std::vector<int32_t> tail(last_start.base(), ids.end());
  EXPECT_EQ(tok.decode(tail, false), "assistant\n");
  EXPECT_EQ(tok.decode(ids, false), prompt);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 2);  // two <|im_end|>: system and user turns
}

}  // namespace
}  // namespace tessera::runtime
