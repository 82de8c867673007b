#include "runtime/frontend/openai_request.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "runtime/frontend/api_error.h"

namespace tessera::frontend {
namespace {

using nlohmann::json;

json parse_object(std::string_view body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number past double's range (1E400): both a client's malformed body.
    throw ApiError(400, std::string("malformed JSON body: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

// The field, or null when it is absent or null (clients send null for "not given").
const json* field(const json& j, const char* name) {
  const auto it = j.find(name);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

double number(const json& j, const char* name, double lo, double hi) {
  const json* v = field(j, name);
  if (!v->is_number()) bad_field(name, "must be a number");
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    bad_field(name, concat("must be in [", lo, ", ", hi, "], got ", x));
  }
  return x;
}

int64_t integer(const json& j, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(j, name);
  if (v->is_number_float()) {
    const double x = v->get<double>();
    if (!std::isfinite(x) || std::floor(x) != x) bad_field(name, "must be an integer");
    // Compared as doubles before any conversion: 1e30 must be an error, not an overflow.
    if (x < static_cast<double>(lo) || x > static_cast<double>(hi) || x >= 9223372036854775808.0) {
      bad_field(name, concat("must be in [", lo, ", ", hi, "], got ", x));
    }
  } else if (!v->is_number_integer()) {
    bad_field(name, "must be an integer");
  }
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    bad_field(name, concat("must be in [", lo, ", ", hi, "]"));
  }
  const auto x = v->is_number_float() ? static_cast<int64_t>(v->get<double>()) : v->get<int64_t>();
  if (x < lo || x > hi) bad_field(name, concat("must be in [", lo, ", ", hi, "], got ", x));
  return x;
}

bool boolean(const json& j, const char* name) {
  const json* v = field(j, name);
  if (!v->is_boolean()) bad_field(name, "must be true or false");
  return v->get<bool>();
}

std::string string(const json& j, const char* name) {
  const json* v = field(j, name);
  if (!v->is_string()) bad_field(name, "must be a string");
  return v->get<std::string>();
}

std::optional<std::string> model_of(const json& j) {
  if (!field(j, "model")) return std::nullopt;
  return string(j, "model");
}

std::vector<int32_t> token_ids(const json& v, const std::string& name, const RequestLimits& limits) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const json& t : v) {
    if (!t.is_number_integer()) bad_field(name, "token ids must be integers");
    const auto id = t.get<int64_t>();
    if (id < 0 || (limits.vocab_size > 0 && id >= limits.vocab_size)) {
      bad_field(name, concat("token id ", id, " is outside the vocabulary [0, ", limits.vocab_size, ")"));
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

std::vector<runtime::ChatMessage> messages_of(const json& j, const RequestLimits& limits) {
  const json* v = field(j, "messages");
  if (!v) bad_field("messages", "is required");
  if (!v->is_array()) bad_field("messages", "must be an array of messages");
  if (v->empty()) bad_field("messages", "must hold at least one message");
  if (static_cast<int>(v->size()) > limits.max_messages) {
    bad_field("messages", concat("holds ", v->size(), " messages; at most ", limits.max_messages));
  }
  std::vector<runtime::ChatMessage> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    const std::string where = concat("messages[", i, "]");
    if (!m.is_object()) bad_field(where, "must be an object with role and content");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) bad_field(where + ".role", "must be a string");
    runtime::ChatMessage message;
    message.role = role->get<std::string>();
    if (message.role == "developer") message.role = "system";  // OpenAI's newer name for system instructions
    if (message.role != "system" && message.role != "user" && message.role != "assistant") {
      bad_field(where + ".role", "must be one of system, developer, user, assistant; got '" + message.role + "'");
    }
    const json* content = field(m, "content");
    if (!content) {
      if (message.role != "assistant") bad_field(where + ".content", "is required");
    } else if (content->is_string()) {
      message.content = content->get<std::string>();
    } else if (content->is_array()) {
      for (size_t k = 0; k < content->size(); ++k) {
        const json& part = (*content)[k];
        const std::string pwhere = concat(where, ".content[", k, "]");
        if (!part.is_object()) bad_field(pwhere, "must be an object {\"type\": \"text\", \"text\": ...}");
        const json* type = field(part, "type");
        if (!type || !type->is_string()) bad_field(pwhere + ".type", "must be a string");
        if (type->get<std::string>() != "text") {
          bad_field(pwhere + ".type", "only text parts are supported, got '" + type->get<std::string>() + "'");
        }
        const json* text = field(part, "text");
        if (!text || !text->is_string()) bad_field(pwhere + ".text", "must be a string");
        message.content += text->get<std::string>();
      }
    } else {
      bad_field(where + ".content", "must be a string or an array of text parts");
    }
    out.push_back(std::move(message));
  }
  return out;
}

std::vector<std::string> stop_of(const json& j, const RequestLimits& limits) {
  const json* v = field(j, "stop");
  std::vector<std::string> stop;
  if (!v) return stop;
  if (v->is_string()) {
    stop.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (const json& s : *v) {
      if (!s.is_string()) bad_field("stop", "must be a string or an array of strings");
      stop.push_back(s.get<std::string>());
    }
  } else {
    bad_field("stop", "must be a string or an array of strings");
  }
  if (static_cast<int>(stop.size()) > limits.max_stop_strings) {
    bad_field("stop", concat("at most ", limits.max_stop_strings, " stop strings"));
  }
  for (const auto& s : stop) {
    if (s.empty()) bad_field("stop", "stop strings must not be empty");
    if (static_cast<int>(s.size()) > limits.max_stop_length) {
      bad_field("stop", concat("stop strings are at most ", limits.max_stop_length, " bytes"));
    }
  }
  return stop;
}

// The fields chat and completions share.
GenerationParams common_params(const json& j, const RequestLimits& limits) {
  GenerationParams p;
  if (field(j, "temperature")) p.temperature = static_cast<float>(number(j, "temperature", 0.0, 2.0));
  if (field(j, "top_p")) p.top_p = static_cast<float>(number(j, "top_p", 0.0, 1.0));
  if (field(j, "top_k")) {
    p.top_k = static_cast<int>(integer(j, "top_k", -1, std::numeric_limits<int32_t>::max()));
    if (p.top_k < 0) p.top_k = 0;
  }
  if (field(j, "min_p")) p.min_p = static_cast<float>(number(j, "min_p", 0.0, 1.0));
  if (field(j, "seed")) {
    p.seed = static_cast<uint64_t>(integer(j, "seed", std::numeric_limits<int64_t>::min(),
                                           std::numeric_limits<int64_t>::max()));
  }
  p.stop = stop_of(j, limits);
  if (field(j, "n")) p.n = static_cast<int>(integer(j, "n", 1, limits.max_n));
  if (field(j, "presence_penalty")) p.presence_penalty = static_cast<float>(number(j, "presence_penalty", -2.0, 2.0));
  if (field(j, "frequency_penalty")) {
    p.frequency_penalty = static_cast<float>(number(j, "frequency_penalty", -2.0, 2.0));
  }
  if (field(j, "repetition_penalty")) {
    p.repetition_penalty = static_cast<float>(number(j, "repetition_penalty", 1e-3, 100.0));
  }
  if (field(j, "ignore_eos")) p.ignore_eos = boolean(j, "ignore_eos");
  if (field(j, "skip_special_tokens")) p.skip_special_tokens = boolean(j, "skip_special_tokens");
  if (field(j, "return_tokens_as_token_ids")) p.return_tokens_as_token_ids = boolean(j, "return_tokens_as_token_ids");
  if (field(j, "stream")) p.stream = boolean(j, "stream");
  if (const json* options = field(j, "stream_options")) {
    if (!options->is_object()) bad_field("stream_options", "must be an object");
    if (field(*options, "include_usage")) {
      if (!(*options)["include_usage"].is_boolean()) bad_field("stream_options.include_usage", "must be true or false");
      p.include_usage = (*options)["include_usage"].get<bool>();
    }
  }
  if (field(j, "user")) p.user = string(j, "user");
  return p;
}

int max_tokens_of(const json& j, const char* name, int lo) {
  return static_cast<int>(integer(j, name, lo, std::numeric_limits<int32_t>::max()));
}

}  // namespace

ChatRequestBody parse_chat_request(std::string_view body, const RequestLimits& limits) {
  const json j = parse_object(body);
  ChatRequestBody out;
  out.model = model_of(j);
  out.messages = messages_of(j, limits);
  out.params = common_params(j, limits);
  // max_completion_tokens is the newer name; it wins when both are given.
  if (field(j, "max_tokens")) out.params.max_tokens = max_tokens_of(j, "max_tokens", 1);
  if (field(j, "max_completion_tokens")) out.params.max_tokens = max_tokens_of(j, "max_completion_tokens", 1);
  const bool logprobs = field(j, "logprobs") ? boolean(j, "logprobs") : false;
  if (field(j, "top_logprobs")) {
    const int top = static_cast<int>(integer(j, "top_logprobs", 0, 20));
    if (!logprobs) bad_field("top_logprobs", "requires logprobs to be true");
    out.params.logprobs = top;
  } else if (logprobs) {
    out.params.logprobs = 0;
  }
  if (field(j, "add_generation_prompt")) out.add_generation_prompt = boolean(j, "add_generation_prompt");
  return out;
}

CompletionRequestBody parse_completion_request(std::string_view body, const RequestLimits& limits) {
  const json j = parse_object(body);
  CompletionRequestBody out;
  out.model = model_of(j);
  const json* prompt = field(j, "prompt");
  if (!prompt) bad_field("prompt", "is required");
  const auto add_text = [&](const json& s) {
    PromptInput in;
    in.text = s.get<std::string>();
    out.prompts.push_back(std::move(in));
  };
  if (prompt->is_string()) {
    add_text(*prompt);
  } else if (prompt->is_array()) {
    if (prompt->empty()) bad_field("prompt", "must not be empty");
    const json& first = (*prompt)[0];
    if (first.is_number_integer()) {
      PromptInput in;
      in.is_ids = true;
      in.ids = token_ids(*prompt, "prompt", limits);
      out.prompts.push_back(std::move(in));
    } else if (first.is_string()) {
      for (const json& s : *prompt) {
        if (!s.is_string()) bad_field("prompt", "a list of prompts must hold only strings");
        add_text(s);
      }
    } else if (first.is_array()) {
      for (const json& ids : *prompt) {
        if (!ids.is_array() || ids.empty()) bad_field("prompt", "a list of token-id prompts must hold non-empty lists");
        PromptInput in;
        in.is_ids = true;
        in.ids = token_ids(ids, "prompt", limits);
        out.prompts.push_back(std::move(in));
      }
    } else {
      bad_field("prompt", "must be a string, a list of strings, a list of token ids or a list of such lists");
    }
  } else {
    bad_field("prompt", "must be a string, a list of strings, a list of token ids or a list of such lists");
  }
  if (static_cast<int>(out.prompts.size()) > limits.max_prompts) {
    bad_field("prompt", concat("holds ", out.prompts.size(), " prompts; at most ", limits.max_prompts));
  }
  out.params = common_params(j, limits);
  if (field(j, "echo")) out.params.echo = boolean(j, "echo");
  // max_tokens 0 is only meaningful with echo: score the prompt, generate nothing (lm-evaluation-harness).
  if (field(j, "max_tokens")) out.params.max_tokens = max_tokens_of(j, "max_tokens", out.params.echo ? 0 : 1);
  if (!out.params.max_tokens) out.params.max_tokens = 16;
  if (field(j, "logprobs")) {
    const json* lp = field(j, "logprobs");
    if (lp->is_boolean()) bad_field("logprobs", "must be an integer in [0, 20] for /v1/completions");
    out.params.logprobs = static_cast<int>(integer(j, "logprobs", 0, 20));
  }
  return out;
}

TokenizeRequestBody parse_tokenize_request(std::string_view body, const RequestLimits& limits) {
  const json j = parse_object(body);
  TokenizeRequestBody out;
  out.model = model_of(j);
  if (field(j, "prompt")) {
    out.prompt = string(j, "prompt");
  } else if (field(j, "messages")) {
    out.messages = messages_of(j, limits);
  } else {
    bad_field("prompt", "give either prompt (a string) or messages");
  }
  if (field(j, "add_special_tokens")) out.add_special_tokens = boolean(j, "add_special_tokens");
  if (field(j, "add_generation_prompt")) out.add_generation_prompt = boolean(j, "add_generation_prompt");
  return out;
}

DetokenizeRequestBody parse_detokenize_request(std::string_view body, const RequestLimits& limits) {
  const json j = parse_object(body);
  DetokenizeRequestBody out;
  out.model = model_of(j);
  const json* tokens = field(j, "tokens");
  if (!tokens || !tokens->is_array()) bad_field("tokens", "must be an array of token ids");
  out.tokens = token_ids(*tokens, "tokens", limits);
  return out;
}

}  // namespace tessera::frontend
