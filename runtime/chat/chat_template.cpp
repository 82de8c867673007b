#include "runtime/chat/chat_template.h"

#include "kernels/base/error.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"

namespace tessera::runtime {

namespace {

// Python's str.isspace(), which Jinja's `trim` and `.strip()` use.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string python_strip(std::string_view text) {
  size_t begin = 0;
  size_t end = 0;  // one past the last non-space character
  bool seen = false;
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Step step = utf8_step(text.substr(pos));
    const bool space = step.kind == Utf8Step::Kind::kValid && is_python_space(step.code_point);
    if (!space) {
      if (!seen) begin = pos;
      seen = true;
      end = pos + step.length;
    }
    pos += step.length;
  }
  return seen ? std::string(text.substr(begin, end - begin)) : std::string();
}

// Appends the parts in order (no temporaries; GCC 12 warns falsely on long operator+ chains).
template <class... Parts>
void append(std::string& out, const Parts&... parts) {
  (out.append(std::string_view(parts)), ...);
}

bool contains(std::string_view text, std::string_view marker) { return text.find(marker) != std::string_view::npos; }

// ChatML templates that insert a system prompt when the conversation has none write it as a string literal:
// '<|im_start|>system\nYou are ...<|im_end|>\n', the newline either real (as tokenizer_config.json's JSON
// escape leaves it) or a Jinja escape. Returns that text, unescaped, when the template has one.
std::optional<std::string> chatml_default_system(std::string_view text) {
  constexpr std::string_view kOpen = "<|im_start|>system";
  constexpr std::string_view kClose = "<|im_end|>";
  for (size_t at = text.find(kOpen); at != std::string_view::npos; at = text.find(kOpen, at + 1)) {
    size_t pos = at + kOpen.size();
    if (text.substr(pos, 1) == "\n") {
      pos += 1;
    } else if (text.substr(pos, 2) == "\\n") {
      pos += 2;
    } else {
      continue;
    }
    std::string literal;
    bool closed = false;
    for (; pos < text.size(); ++pos) {
      const char c = text[pos];
      if (c == '\'' || c == '"') break;  // the literal ends: a default text must reach <|im_end|> first
      if (text.substr(pos, kClose.size()) == kClose) {
        closed = true;
        break;
      }
      if (c == '\\' && pos + 1 < text.size()) {
        const char e = text[++pos];
        literal.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
      } else {
        literal.push_back(c);
      }
    }
    if (closed && !literal.empty()) return literal;
  }
  return std::nullopt;
}

[[noreturn]] void alternation_error(ChatFamily family) {
  fail("chat template ", chat_family_name(family),
       ": conversation roles must alternate user/assistant/user/assistant/...");
}

std::string render_chatml(std::span<const ChatMessage> messages, bool add_generation_prompt,
                          const std::optional<std::string>& default_system) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0 && default_system && messages[0].role != "system") {
      append(out, "<|im_start|>system\n", *default_system, "<|im_end|>\n");
    }
    append(out, "<|im_start|>", messages[i].role, "\n", messages[i].content, "<|im_end|>\n");
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_llama3(std::span<const ChatMessage> messages, bool add_generation_prompt, const std::string& bos) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += bos;
    append(out, "<|start_header_id|>", messages[i].role, "<|end_header_id|>\n\n", python_strip(messages[i].content),
           "<|eot_id|>");
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_llama2(std::span<const ChatMessage> messages, const std::string& bos, const std::string& eos) {
  // The reference template reads messages[0] unconditionally, which fails on an empty conversation.
  TESSERA_CHECK(!messages.empty(), "chat template llama2: the conversation is empty");
  std::optional<std::string> system;
  if (messages[0].role == "system") {
    system = messages[0].content;
    messages = messages.subspan(1);
  }
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if ((m.role == "user") != (i % 2 == 0)) alternation_error(ChatFamily::kLlama2);
    std::string content;
    if (i == 0 && system) append(content, "<<SYS>>\n", *system, "\n<</SYS>>\n\n");
    content += m.content;
    if (m.role == "user") {
      append(out, bos, "[INST] ", python_strip(content), " [/INST]");
    } else if (m.role == "assistant") {
      append(out, " ", python_strip(content), " ", eos);
    }
  }
  return out;  // the template has no generation prompt: the text after [/INST] is the assistant's
}

std::string render_mistral(std::span<const ChatMessage> messages, const std::string& bos, const std::string& eos) {
  std::string out = bos;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if ((m.role == "user") != (i % 2 == 0)) alternation_error(ChatFamily::kMistral);
    if (m.role == "user") {
      append(out, "[INST] ", m.content, " [/INST]");
    } else if (m.role == "assistant") {
      append(out, m.content, eos);
    } else {
      fail("chat template mistral: only user and assistant roles are supported, got '", m.role, "'");
    }
  }
  return out;
}

}  // namespace

ChatFamily parse_chat_family(std::string_view name) {
  if (name == "chatml" || name == "qwen2" || name == "smollm2" || name == "smollm") return ChatFamily::kChatMl;
  if (name == "llama3" || name == "llama-3") return ChatFamily::kLlama3;
  if (name == "llama2" || name == "llama-2") return ChatFamily::kLlama2;
  if (name == "mistral") return ChatFamily::kMistral;
  fail("chat template: unknown family '", name, "' (known: chatml, llama3, llama2, mistral)");
}

std::string_view chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::kChatMl: return "chatml";
    case ChatFamily::kLlama3: return "llama3";
    case ChatFamily::kLlama2: return "llama2";
    case ChatFamily::kMistral: return "mistral";
  }
  return "unknown";
}

ChatFamily detect_chat_family(std::string_view text) {
  if (contains(text, "<|im_start|>")) return ChatFamily::kChatMl;
  if (contains(text, "<|start_header_id|>")) return ChatFamily::kLlama3;
  if (contains(text, "[INST]") && contains(text, "<<SYS>>")) return ChatFamily::kLlama2;
  if (contains(text, "[INST]")) return ChatFamily::kMistral;
  const std::string_view head = text.substr(0, 80);
  fail("chat template: unrecognised template (not ChatML, Llama-3, Llama-2 or Mistral; name the family "
       "explicitly): \"",
       head, text.size() > head.size() ? "...\"" : "\"");
}

ChatTemplate::ChatTemplate(ChatFamily family, std::string bos_token, std::string eos_token,
                           std::optional<std::string> default_system_prompt)
    : family_(family), bos_(std::move(bos_token)), eos_(std::move(eos_token)),
      default_system_(std::move(default_system_prompt)) {}

ChatTemplate ChatTemplate::from_text(std::string_view template_text, std::string bos_token, std::string eos_token,
                                     std::optional<ChatFamily> family) {
  const ChatFamily chosen = family ? *family : detect_chat_family(template_text);
  std::optional<std::string> system;
  if (chosen == ChatFamily::kChatMl) system = chatml_default_system(template_text);
  return ChatTemplate(chosen, std::move(bos_token), std::move(eos_token), std::move(system));
}

ChatTemplate ChatTemplate::for_tokenizer(const Tokenizer& tokenizer, std::optional<ChatFamily> family) {
  const auto text = [&](std::optional<int32_t> id) { return id ? tokenizer.token_text(*id) : std::string(); };
  const std::string bos = text(tokenizer.bos_id());
  const std::string eos = text(tokenizer.eos_id());
  const auto& jinja = tokenizer.spec().chat_template;
  if (jinja) return from_text(*jinja, bos, eos, family);
  TESSERA_CHECK(family.has_value(), "chat template: the model has no tokenizer.chat_template; name a family "
                                    "(chatml, llama3, llama2, mistral)");
  return ChatTemplate(*family, bos, eos);
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  switch (family_) {
    case ChatFamily::kChatMl: return render_chatml(messages, add_generation_prompt, default_system_);
    case ChatFamily::kLlama3: return render_llama3(messages, add_generation_prompt, bos_);
    case ChatFamily::kLlama2: return render_llama2(messages, bos_, eos_);
    case ChatFamily::kMistral: return render_mistral(messages, bos_, eos_);
  }
  fail("chat template: unknown family");
}

}  // namespace tessera::runtime
