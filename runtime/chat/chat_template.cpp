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

// The rendering as it is built: text runs and the template's own special tokens, apart, so that the same rendering
// becomes text (render) or token ids in which only the template's specials are control tokens (render_tokens).
class Pieces {
 public:
  // Template text and message content: never parsed for special-token spellings when rendered to ids.
  template <class... Parts>
  void text(const Parts&... parts) {
    (append_text(std::string_view(parts)), ...);
  }
  // A special token the template writes (<|im_start|>, <s>, ...); empty spellings (a model without BOS) vanish.
  void special(std::string_view spelling) {
    if (!spelling.empty()) pieces_.push_back({true, std::string(spelling)});
  }
  std::vector<ChatPiece> take() { return std::move(pieces_); }

 private:
  void append_text(std::string_view t) {
    if (t.empty()) return;
    if (pieces_.empty() || pieces_.back().special) pieces_.push_back({false, std::string()});
    pieces_.back().text.append(t);
  }
  std::vector<ChatPiece> pieces_;
};

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

std::vector<ChatPiece> render_chatml(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                     const std::optional<std::string>& default_system) {
  Pieces out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0 && default_system && messages[0].role != "system") {
      out.special("<|im_start|>");
      out.text("system\n", *default_system);
      out.special("<|im_end|>");
      out.text("\n");
    }
    out.special("<|im_start|>");
    out.text(messages[i].role, "\n", messages[i].content);
    out.special("<|im_end|>");
    out.text("\n");
  }
  if (add_generation_prompt) {
    out.special("<|im_start|>");
    out.text("assistant\n");
  }
  return out.take();
}

std::vector<ChatPiece> render_llama3(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                     const std::string& bos) {
  Pieces out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out.special(bos);
    out.special("<|start_header_id|>");
    out.text(messages[i].role);
    out.special("<|end_header_id|>");
    out.text("\n\n", python_strip(messages[i].content));
    out.special("<|eot_id|>");
  }
  if (add_generation_prompt) {
    out.special("<|start_header_id|>");
    out.text("assistant");
    out.special("<|end_header_id|>");
    out.text("\n\n");
  }
  return out.take();
}

std::vector<ChatPiece> render_llama2(std::span<const ChatMessage> messages, const std::string& bos,
                                     const std::string& eos) {
  // The reference template reads messages[0] unconditionally, which fails on an empty conversation.
  TESSERA_CHECK(!messages.empty(), "chat template llama2: the conversation is empty");
  std::optional<std::string> system;
  if (messages[0].role == "system") {
    system = messages[0].content;
    messages = messages.subspan(1);
  }
  Pieces out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if ((m.role == "user") != (i % 2 == 0)) alternation_error(ChatFamily::kLlama2);
    std::string content;
    if (i == 0 && system) content.append("<<SYS>>\n").append(*system).append("\n<</SYS>>\n\n");
    content += m.content;
    if (m.role == "user") {
      out.special(bos);
      out.text("[INST] ", python_strip(content), " [/INST]");
    } else if (m.role == "assistant") {
      out.text(" ", python_strip(content), " ");
      out.special(eos);
    }
  }
  return out.take();  // the template has no generation prompt: the text after [/INST] is the assistant's
}

std::vector<ChatPiece> render_mistral(std::span<const ChatMessage> messages, const std::string& bos,
                                      const std::string& eos) {
  Pieces out;
  out.special(bos);
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if ((m.role == "user") != (i % 2 == 0)) alternation_error(ChatFamily::kMistral);
    if (m.role == "user") {
      out.text("[INST] ", m.content, " [/INST]");
    } else if (m.role == "assistant") {
      out.text(m.content);
      out.special(eos);
    } else {
      fail("chat template mistral: only user and assistant roles are supported, got '", m.role, "'");
    }
  }
  return out.take();
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
  std::string out;
  for (const ChatPiece& piece : render_pieces(messages, add_generation_prompt)) out += piece.text;
  return out;
}

std::vector<int32_t> ChatTemplate::render_tokens(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                                                 bool add_generation_prompt) const {
  std::vector<int32_t> ids;
  size_t offset = 0;  // bytes of the text rendering so far: SentencePiece treats the text's start specially
  for (const ChatPiece& piece : render_pieces(messages, add_generation_prompt)) {
    if (piece.special) {
      if (const auto id = tokenizer.find_token(piece.text); id && tokenizer.is_special(*id)) {
        ids.push_back(*id);
      } else {
        // Not one control token in this vocabulary: the template's own text, trusted, parsed as written.
        const std::vector<int32_t> more = tokenizer.encode(piece.text, false, true);
        ids.insert(ids.end(), more.begin(), more.end());
      }
    } else {
      tokenizer.encode_plain(piece.text, offset == 0, ids);
    }
    offset += piece.text.size();
  }
  return ids;
}

std::vector<ChatPiece> ChatTemplate::render_pieces(std::span<const ChatMessage> messages,
                                                   bool add_generation_prompt) const {
  switch (family_) {
    case ChatFamily::kChatMl: return render_chatml(messages, add_generation_prompt, default_system_);
    case ChatFamily::kLlama3: return render_llama3(messages, add_generation_prompt, bos_);
    case ChatFamily::kLlama2: return render_llama2(messages, bos_, eos_);
    case ChatFamily::kMistral: return render_mistral(messages, bos_, eos_);
  }
  fail("chat template: unknown family");
}

}  // namespace tessera::runtime
