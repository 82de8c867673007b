// Fuzzes the chat renderer the server uses for /v1/chat/completions and /tokenize (ChatTemplate::render_tokens)
// on arbitrary conversations, with the two committed fixture vocabularies (tests/fixtures/tokenizer/hf_bytelevel:
// ChatML specials; hf_metaspace: <s>/</s>) and every template family. Input: byte 0 picks the family (bits 0-1),
// the vocabulary (bit 2) and add_generation_prompt (bit 3); the rest is messages separated by NUL bytes, each a
// role byte (system, user, assistant, tool, developer, or empty) and its content. Defined behaviour:
//   - the only exception is tessera::Error (a conversation the family rejects: the server's 400);
//   - every id is in the vocabulary; render() is the pieces' concatenation;
//   - no forged turns: the output holds exactly as many special-token ids as the template wrote special pieces
//     that are specials of the vocabulary — message content never becomes a control token.
// Seeds: tests/fuzz/corpus/fuzz_chat_template/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/chat/chat_template.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/tokenizer_spec_hf.h"

#ifndef TESSERA_FUZZ_SOURCE_DIR
#error "tests/fuzz/CMakeLists.txt defines TESSERA_FUZZ_SOURCE_DIR (the fixtures' tree)"
#endif

namespace {

using namespace tessera::runtime;

void check(bool condition) {
  if (!condition) std::abort();
}

std::unique_ptr<Tokenizer> fixture_tokenizer(const std::string& name) {
  const std::string dir = std::string(TESSERA_FUZZ_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name;
  return std::make_unique<Tokenizer>(
      tokenizer_spec_from_hf_json(dir + "/tokenizer.json", std::filesystem::path(dir + "/tokenizer_config.json")));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<Tokenizer> tokenizers[2] = {fixture_tokenizer("hf_bytelevel"),
                                                           fixture_tokenizer("hf_metaspace")};
  static const char* roles[] = {"system", "user", "assistant", "tool", "developer", ""};
  if (size == 0) return 0;
  const ChatFamily families[] = {ChatFamily::kChatMl, ChatFamily::kLlama3, ChatFamily::kLlama2, ChatFamily::kMistral};
  const ChatFamily family = families[data[0] & 3];
  const Tokenizer& tokenizer = *tokenizers[(data[0] >> 2) & 1];
  const bool add_generation_prompt = (data[0] & 8) != 0;

  std::vector<ChatMessage> messages;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t begin = 0;
  while (begin < rest.size() && messages.size() < 64) {
    size_t end = rest.find('\0', begin);
    if (end == std::string::npos) end = rest.size();
    if (end > begin) {
      const auto role = static_cast<unsigned char>(rest[begin]);
      messages.push_back({roles[role % 6], rest.substr(begin + 1, end - begin - 1)});
    }
    begin = end + 1;
  }

  try {
    const ChatTemplate chat = ChatTemplate::for_tokenizer(tokenizer, family);
    const std::vector<ChatPiece> pieces = chat.render_pieces(messages, add_generation_prompt);
    std::string text;
    size_t template_specials = 0;
    for (const ChatPiece& piece : pieces) {
      text += piece.text;
      if (!piece.special) continue;
      const auto id = tokenizer.find_token(piece.text);
      if (id && tokenizer.is_special(*id)) ++template_specials;
    }
    check(chat.render(messages, add_generation_prompt) == text);
    const std::vector<int32_t> ids = chat.render_tokens(tokenizer, messages, add_generation_prompt);
    size_t specials = 0;
    for (const int32_t id : ids) {
      check(id >= 0 && id < tokenizer.vocab_size());
      if (tokenizer.is_special(id)) ++specials;
    }
    check(specials == template_specials);
  } catch (const tessera::Error&) {
    // A conversation this family's template rejects: the server's 400.
  }
  return 0;
}
