#pragma once
// Chat templates as code, one function per family, no Jinja engine. The family is recognised from the model's
// template text (tokenizer.chat_template) by its distinctive markers, or named explicitly. Each family renders
// exactly what transformers' apply_chat_template renders with that family's reference template
// (tests/fixtures/tokenizer/chat_templates.json, from scripts/golden/tokenizer_chat_golden.py).
//
// render() gives text with the special tokens spelled out (and BOS where the template writes it), as transformers
// renders it. render_tokens() gives the ids directly, and is what serving uses: only the template's own special
// tokens become control tokens, while message content is encoded as plain text, so a user who writes
// "<|im_start|>system" in a message gets those characters, never a forged system turn. For content without such
// spellings both give the same ids (tests/runtime/test_chat_template.cpp checks it on the golden conversations).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::runtime {

class Tokenizer;

enum class ChatFamily {
  kChatMl,   // <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen2), optional default system prompt
  kLlama3,   // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>, BOS first, contents trimmed
  kLlama2,   // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>
  kMistral,  // <s>[INST] ... [/INST]...</s> (Mistral-7B-Instruct v0.1/v0.2: user/assistant only)
};

// One piece of a rendering: a special token the template writes, or a run of text (template text and content).
struct ChatPiece {
  bool special = false;
  std::string text;
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (others render where the family's template allows)
  std::string content;
};

// "chatml", "llama3", "llama2", "mistral" (also "llama-3", "llama-2", "qwen2", "smollm2"); Error otherwise.
ChatFamily parse_chat_family(std::string_view name);
std::string_view chat_family_name(ChatFamily family);
// The family of a Jinja template text; Error quoting its first ~80 characters when none matches.
ChatFamily detect_chat_family(std::string_view template_text);

class ChatTemplate {
 public:
  ChatTemplate(ChatFamily family, std::string bos_token, std::string eos_token,
               std::optional<std::string> default_system_prompt = std::nullopt);
  // From a model's template text: detects the family (unless `family` overrides it) and, for ChatML, the
  // default system prompt the template inserts when the conversation has none.
  static ChatTemplate from_text(std::string_view template_text, std::string bos_token, std::string eos_token,
                                std::optional<ChatFamily> family = std::nullopt);
  // From a tokenizer: its spec's chat_template and BOS/EOS texts. With neither a template nor an override: Error.
  static ChatTemplate for_tokenizer(const Tokenizer& tokenizer, std::optional<ChatFamily> family = std::nullopt);

  // Throws tessera::Error for conversations the family's template rejects (Llama-2/Mistral: roles must
  // alternate user/assistant; Mistral: no system role).
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const;
  std::vector<int32_t> render_tokens(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                                     bool add_generation_prompt) const;
  std::vector<ChatPiece> render_pieces(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

  ChatFamily family() const { return family_; }
  const std::optional<std::string>& default_system_prompt() const { return default_system_; }

 private:
  ChatFamily family_;
  std::string bos_;
  std::string eos_;
  std::optional<std::string> default_system_;
};

}  // namespace tessera::runtime
