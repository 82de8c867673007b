#include "runtime/frontend/openai_api.h"

#include <nlohmann/json.hpp>

#include "runtime/frontend/api_error.h"

namespace tessera::frontend {
namespace {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Request ids a client may pass through: printable, short, no quotes (they go into headers and JSON).
bool acceptable_request_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (const unsigned char c : id) {
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace

OpenAiApi::OpenAiApi(ServedModel model, runtime::RequestQueue& queue, InFlightRequests& in_flight,
                     const runtime::EngineStatus& status, ServerMetrics& metrics, ApiOptions options)
    : model_(std::move(model)), queue_(queue), in_flight_(in_flight), status_(status), metrics_(metrics), options_(std::move(options)) {
  options_.limits.vocab_size = model_.vocab_size;
}


// One request as the access checks, the rate limiter and the audit log see it.
struct OpenAiApi::RequestContext {
  std::string id;
  std::optional<std::string> key_name;  // the caller's key, once authenticated
  RateLimit limit;                      // the caller's limits
  std::chrono::steady_clock::time_point arrived;
  std::chrono::system_clock::time_point arrived_wall;
  bool job_reports = false;  // a CompletionJob took the request over: it writes the audit line when it ends
};

void OpenAiApi::handle(HttpRequest request, std::shared_ptr<Exchange> exchange) {
  RequestContext context;
  context.arrived = std::chrono::steady_clock::now();
  context.arrived_wall = std::chrono::system_clock::now();
  context.id = request_ids_.next();
  if (const auto it = request.headers.find("x-request-id"); it != request.headers.end() &&
                                                            acceptable_request_id(it->second)) {
    context.id = it->second;
  }
  int status = 200;
  std::optional<std::string> error_type;
  try {
    authenticate(request, context);
    route(request, exchange, context);
  } catch (const ApiError& e) {
    status = e.status();
    error_type = e.type();
    std::vector<std::pair<std::string, std::string>> headers = {{"X-Request-Id", context.id}};
    if (e.status() == 429 || e.status() == 503) {
      headers.emplace_back("Retry-After", std::to_string(e.retry_after().value_or(options_.retry_after_seconds)));
    }
    if (e.status() == 401) headers.emplace_back("WWW-Authenticate", "Bearer");  // RFC 6750
    if (e.status() == 405) headers.emplace_back("Allow", e.allow());
    exchange->respond(e.status(), "application/json", e.body(), headers);
  } catch (const Error& e) {
    // Tokenizer and template errors are the request's fault (a conversation the template rejects).
    status = 400;
    error_type = "invalid_request_error";
    exchange->respond(400, "application/json", ApiError(400, e.what()).body(), {{"X-Request-Id", context.id}});
  }
  if (options_.access.audit && !context.job_reports) {
    AuditRecord record = audit_record(request, context);
    record.status = status;
    record.error_type = std::move(error_type);
    record.total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - context.arrived).count();
    options_.access.audit->write(record);
  }
}

AuditRecord OpenAiApi::audit_record(const HttpRequest& request, const RequestContext& context) const {
  AuditRecord r;
  r.time = context.arrived_wall;
  r.request_id = context.id;
  r.key_name = context.key_name;
  r.client = request.remote;
  r.method = request.method;
  r.route = request.path;
  return r;
}

void OpenAiApi::authenticate(const HttpRequest& request, RequestContext& context) {
  const AccessControl& access = options_.access;
  context.limit = access.default_limit;
  if (!access.keys) return;
  if (access.public_health_and_metrics && (request.path == "/health" || request.path == "/metrics")) return;
  const auto header = request.headers.find("authorization");
  if (header == request.headers.end()) {
    metrics_.observe_rejected("missing_key");
    throw ApiError(401, "You didn't provide an API key: send it in the header 'Authorization: Bearer KEY'",
                   "invalid_request_error", std::nullopt, "missing_api_key");
  }
  const std::optional<std::string_view> presented = bearer_token(header->second);
  const ApiKey* key = presented ? access.keys->find(*presented) : nullptr;
  if (!key) {
    // The message never repeats what was sent: it might be a real key of another service.
    metrics_.observe_rejected("invalid_key");
    throw ApiError(401, presented ? "Incorrect API key provided" : "The Authorization header is not 'Bearer KEY'",
                   "invalid_request_error", std::nullopt, "invalid_api_key");
  }
  context.key_name = key->name;
  if (key->requests_per_minute) context.limit.requests_per_minute = *key->requests_per_minute;
  if (key->tokens_per_minute) context.limit.tokens_per_minute = *key->tokens_per_minute;
}

void OpenAiApi::charge_rate_limit(const RequestContext& context, int64_t tokens) {
  if (!options_.access.limiter) return;
  const RateDecision d = options_.access.limiter->admit(context.key_name.value_or(""), context.limit, tokens);
  if (d.admitted()) return;
  const std::string who = context.key_name ? "key '" + *context.key_name + "'" : "this server";
  if (d.outcome == RateDecision::Outcome::kNeverFits) {
    metrics_.observe_rejected("rate_limit_too_large");
    throw ApiError(400,
                   concat("this request may use ", tokens, " tokens (prompt + max_tokens per choice), more than the ",
                          context.limit.tokens_per_minute, " tokens per minute of ", who, ": lower max_tokens"),
                   "invalid_request_error", "max_tokens", "request_too_large");
  }
  const bool requests = d.outcome == RateDecision::Outcome::kTooManyRequests;
  metrics_.observe_rejected(requests ? "rate_limit_requests" : "rate_limit_tokens");
  const int64_t retry = d.retry_after_seconds();
  const std::string message =
      requests ? concat("Rate limit reached for ", who, " on requests per minute: limit ",
                        context.limit.requests_per_minute, ". Try again in ", retry, " s.")
               : concat("Rate limit reached for ", who, " on tokens per minute: limit ", context.limit.tokens_per_minute,
                        ", requested ", tokens, ". Try again in ", retry, " s.");
  throw ApiError(429, message, "rate_limit_exceeded", std::nullopt,
                 requests ? "requests_per_minute" : "tokens_per_minute")
      .with_retry_after(retry);
}

void OpenAiApi::check_model(const std::optional<std::string>& model) const {
  if (model && *model != model_.name) {
    throw ApiError(404, "the model '" + *model + "' does not exist; this server serves '" + model_.name + "'",
                   "invalid_request_error", "model", "model_not_found");
  }
}

void OpenAiApi::check_serving() const {
  const runtime::EngineState state = status_.state();
  if (state == runtime::EngineState::kReady) return;
  if (state == runtime::EngineState::kLoading) throw ApiError(503, "the model is still loading", "service_unavailable");
  if (state == runtime::EngineState::kDraining || state == runtime::EngineState::kStopped) {
    throw ApiError(503, "the server is shutting down", "service_unavailable");
  }
  throw ApiError(503, "the engine has failed: " + status_.failure(), "service_unavailable");
}

std::vector<int32_t> OpenAiApi::encode_text(const std::string& text, bool add_special) const {
  if (!model_.tokenizer) {
    throw ApiError(400, "this model has no tokenizer: give the prompt as token ids", "invalid_request_error", "prompt");
  }
  return model_.tokenizer->encode(text, add_special, /*parse_special=*/true);
}

std::vector<int32_t> OpenAiApi::render_chat(const std::vector<runtime::ChatMessage>& messages,
                                            bool add_generation_prompt) const {
  if (!model_.tokenizer || !model_.chat_template) {
    throw ApiError(400, "this model has no chat template: use /v1/completions", "invalid_request_error", "messages");
  }
  return model_.chat_template->render_tokens(*model_.tokenizer, messages, add_generation_prompt);
}

void OpenAiApi::route(const HttpRequest& request, const std::shared_ptr<Exchange>& exchange,
                      RequestContext& context) {
  const std::string& request_id = context.id;
  const std::string& path = request.path;
  const auto method_is = [&](const char* wanted) {
    if (request.method != wanted) {
      throw ApiError(405, "method " + request.method + " is not allowed on " + path + " (use " + wanted + ")",
                     "invalid_request_error", std::nullopt, "method_not_allowed")
          .with_allow(wanted);
    }
  };
  const std::vector<std::pair<std::string, std::string>> id_header = {{"X-Request-Id", request_id}};
  if (path == "/health") {
    method_is("GET");
    if (status_.healthy(options_.max_engine_silence)) {
      exchange->respond(200, "application/json", "{\"status\":\"ok\"}", id_header);
      return;
    }
    const runtime::EngineState state = status_.state();
    std::string why = std::string("engine ") + runtime::engine_state_name(state);
    if (state == runtime::EngineState::kReady) {
      why = concat("engine silent for ", static_cast<int>(status_.silence_seconds()), " s");
    } else if (state == runtime::EngineState::kFailed) {
      why += ": " + status_.failure();
    }
    throw ApiError(503, why, "service_unavailable");
  }
  if (path == "/metrics") {
    method_is("GET");
    exchange->respond(200, "text/plain; version=0.0.4; charset=utf-8", metrics_.serialize(), id_header);
    return;
  }
  if (path == "/v1/models") {
    method_is("GET");
    const json body = {{"object", "list"},
                       {"data", json::array({{{"id", model_.name},
                                              {"object", "model"},
                                              {"created", model_.created},
                                              {"owned_by", "tessera"},
                                              {"root", model_.name},
                                              {"max_model_len", model_.max_model_len}}})}};
    exchange->respond(200, "application/json", dump(body), id_header);
    return;
  }
  if (path == "/v1/chat/completions") {
    method_is("POST");
    return generate(ApiKind::kChat, request, exchange, context);
  }
  if (path == "/v1/completions") {
    method_is("POST");
    return generate(ApiKind::kCompletion, request, exchange, context);
  }
  if (path == "/tokenize") {
    method_is("POST");
    const TokenizeRequestBody body = parse_tokenize_request(request.body, options_.limits);
    check_model(body.model);
    const std::vector<int32_t> ids = body.prompt ? encode_text(*body.prompt, body.add_special_tokens)
                                                 : render_chat(body.messages, body.add_generation_prompt);
    const json out = {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", model_.max_model_len}};
    exchange->respond(200, "application/json", dump(out), id_header);
    return;
  }
  if (path == "/detokenize") {
    method_is("POST");
    const DetokenizeRequestBody body = parse_detokenize_request(request.body, options_.limits);
    check_model(body.model);
    if (!model_.tokenizer) throw ApiError(400, "this model has no tokenizer", "invalid_request_error", "tokens");
    const json out = {{"prompt", model_.tokenizer->decode(body.tokens, /*skip_special=*/false)}};
    exchange->respond(200, "application/json", dump(out), id_header);
    return;
  }
  throw ApiError(404, "no route " + request.method + " " + path, "invalid_request_error", std::nullopt,
                 "not_found");
}

void OpenAiApi::generate(ApiKind kind, const HttpRequest& request, const std::shared_ptr<Exchange>& exchange,
                         RequestContext& context) {
  const auto arrived = context.arrived;
  std::vector<PreparedPrompt> prompts;
  GenerationParams params;
  if (kind == ApiKind::kChat) {
    ChatRequestBody body = parse_chat_request(request.body, options_.limits);
    check_model(body.model);
    params = std::move(body.params);
    PreparedPrompt p;
    p.ids = render_chat(body.messages, body.add_generation_prompt);
    prompts.push_back(std::move(p));
  } else {
    CompletionRequestBody body = parse_completion_request(request.body, options_.limits);
    check_model(body.model);
    params = std::move(body.params);
    for (PromptInput& in : body.prompts) {
      PreparedPrompt p;
      if (in.is_ids) {
        p.ids = std::move(in.ids);
        if (params.echo && model_.tokenizer) p.echo_text = model_.tokenizer->decode(p.ids, params.skip_special_tokens);
      } else {
        p.ids = encode_text(in.text, /*add_special=*/true);
        p.echo_text = in.text;
      }
      prompts.push_back(std::move(p));
    }
  }
  if (params.n * static_cast<int>(prompts.size()) > options_.limits.max_choices) {
    bad_field("n", concat("n times the number of prompts is at most ", options_.limits.max_choices));
  }
  for (const PreparedPrompt& p : prompts) {
    const auto len = static_cast<int64_t>(p.ids.size());
    if (len == 0) bad_field(kind == ApiKind::kChat ? "messages" : "prompt", "the prompt is empty");
    const int64_t completion = params.max_tokens ? std::max(*params.max_tokens, 1) : 1;
    if (len + completion > model_.max_model_len) {
      throw ApiError(400,
                     concat("this model's maximum context length is ", model_.max_model_len, " tokens, but ", len,
                            " prompt tokens plus ", completion, " completion tokens were requested"),
                     "invalid_request_error", params.max_tokens ? "max_tokens" : "messages", "context_length_exceeded");
    }
    const int64_t total = params.max_tokens ? len + completion : model_.max_model_len;
    const int64_t blocks = (total + model_.kv_block_size - 1) / model_.kv_block_size;
    if (blocks > model_.kv_blocks) {
      throw ApiError(400,
                     concat(len, " prompt tokens plus ", total - len, " completion tokens need ",
                            blocks * model_.kv_block_size, " tokens of KV cache, but the whole cache holds ",
                            model_.kv_blocks * model_.kv_block_size),
                     "invalid_request_error", "max_tokens", "context_length_exceeded");
    }
  }
  check_serving();
  // The most tokens the request may use, as its usage would count them: the prompts once, max_tokens per choice.
  int64_t cost = 0;
  for (const PreparedPrompt& p : prompts) {
    const auto len = static_cast<int64_t>(p.ids.size());
    cost += len + static_cast<int64_t>(params.n) * (params.max_tokens ? *params.max_tokens : model_.max_model_len - len);
  }
  charge_rate_limit(context, cost);

  CompletionHooks hooks;
  if (AuditLog* audit = options_.access.audit) {
    AuditRecord record = audit_record(request, context);
    if (audit->log_content()) {
      std::vector<std::string> texts;
      for (const PreparedPrompt& p : prompts) texts.push_back(prompt_text(p.ids));
      record.prompts = std::move(texts);
    }
    hooks.with_texts = audit->log_content();
    hooks.on_complete = [audit, record = std::move(record)](const CompletionSummary& s) mutable {
      record.status = s.status;
      if (s.status >= 400) record.error_type = "internal_error";
      record.prompt_tokens = s.prompt_tokens;
      record.completion_tokens = s.completion_tokens;
      record.queue_seconds = s.queue_seconds;
      record.first_token_seconds = s.first_token_seconds;
      record.total_seconds = s.total_seconds;
      record.finish_reasons = s.finish_reasons;
      record.client_disconnected = s.client_disconnected;
      if (audit->log_content()) record.completions = s.texts;
      audit->write(record);
    };
  }
  auto job = std::make_shared<CompletionJob>(kind, context.id, model_, std::move(params), std::move(prompts), queue_,
                                             in_flight_, metrics_, exchange, arrived, std::move(hooks));
  try {
    job->start();
  } catch (const ApiError&) {
    // The queue was full or closing: the request never ran, so its key is not charged for it.
    if (options_.access.limiter) options_.access.limiter->refund(context.key_name.value_or(""), context.limit, cost);
    throw;
  }
  context.job_reports = true;
}

std::string OpenAiApi::prompt_text(const std::vector<int32_t>& ids) const {
  if (model_.tokenizer) return model_.tokenizer->decode(ids, /*skip_special=*/false);
  std::string out;
  for (const int32_t id : ids) {
    if (!out.empty()) out += ' ';
    out += std::to_string(id);
  }
  return out;
}

}  // namespace tessera::frontend
