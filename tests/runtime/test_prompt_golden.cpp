// The prompts of the forward golden file, rebuilt the way `tessera generate` builds them (chat template + tokenizer
// loaded from the GGUF), must be exactly the ids transformers fed its model.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "runtime/chat/chat_template.h"
#include "runtime/model/model_tokenizer.h"
#include "tests/support/json_file.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

TEST(PromptGolden, ChatAndPlainPromptsMatchTransformers) {
  const auto model = testing::default_model_path();
  TESSERA_REQUIRE_MODEL(model);
  const nlohmann::json golden = testing::read_json(testing::fixture("smollm2/forward_golden.json"));
  const auto tokenizer = load_model_tokenizer(model);
  const ChatTemplate chat = ChatTemplate::for_tokenizer(*tokenizer);
  int checked = 0;
  for (const auto& c : golden.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    std::vector<int32_t> ids;
    if (c.at("chat").get<bool>()) {
      const std::vector<ChatMessage> messages = {{"user", text}};
      ids = tokenizer->encode(chat.render(messages, true), false, true);
    } else {
      ids = tokenizer->encode(text, true, false);
    }
    EXPECT_EQ(ids, c.at("prompt_ids").get<std::vector<int32_t>>()) << c.at("name").get<std::string>();
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

}  // namespace
}  // namespace tessera::runtime
