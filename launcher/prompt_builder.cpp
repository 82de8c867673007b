#include "launcher/prompt_builder.h"

#include <algorithm>
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

std::vector<int32_t> parse_prompt_ids(const std::string& text, int vocab_size) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == ',' || text[i] == '\t') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    const std::string entry = text.substr(i, std::max<size_t>(end - i, 1));
    TESSERA_CHECK(end > i && end - i <= 9, "--prompt-ids: '", entry, "' is not a token id (expected ids such as \"1 2 3\")");
    const int id = std::stoi(entry);
    TESSERA_CHECK(id < vocab_size, "--prompt-ids: token id ", id, " outside the vocabulary of ", vocab_size);
    ids.push_back(id);
    i = end;
  }
  TESSERA_CHECK(!ids.empty(), "--prompt-ids holds no token ids");
  return ids;
}

}  // namespace tessera::launcher
