#include "launcher/prompt_builder.h"

#include <optional>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/chat/chat_template.h"

namespace tessera::launcher {

std::vector<int32_t> build_prompt(const runtime::Tokenizer& tokenizer, const GenerationOptions& o) {
  TESSERA_CHECK(!o.prompt.empty(), "the prompt is empty: pass --prompt TEXT");
  if (!o.chat) {
    TESSERA_CHECK(o.system_prompt.empty(), "--system needs --chat (a system message exists only in a conversation)");
    // The user's text is data: special-token spellings in it stay text.
    return tokenizer.encode(o.prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  std::optional<runtime::ChatFamily> family;
  if (!o.chat_template.empty()) family = runtime::parse_chat_family(o.chat_template);
  const runtime::ChatTemplate chat = runtime::ChatTemplate::for_tokenizer(tokenizer, family);
  std::vector<runtime::ChatMessage> messages;
  if (!o.system_prompt.empty()) messages.push_back({"system", o.system_prompt});
  messages.push_back({"user", o.prompt});
  // The rendered text holds the template's special tokens (and BOS) as text: parse them, add nothing more.
  return tokenizer.encode(chat.render(messages, /*add_generation_prompt=*/true), /*add_special=*/false,
                          /*parse_special=*/true);
}

}  // namespace tessera::launcher
