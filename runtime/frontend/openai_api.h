#pragma once
// The OpenAI-compatible HTTP API on top of the engine: routes, validation, tokenization and chat rendering on the
// I/O threads, generation through the RequestQueue (runtime/frontend/completion_job.h), health from the
// EngineStatus, metrics from ServerMetrics.
//   POST /v1/chat/completions, /v1/completions, /tokenize, /detokenize;  GET /v1/models, /health, /metrics.
// Every response carries X-Request-Id (the client's, or one made here).
//
// Access control (AccessControl, all optional): with API keys, every route but /health and /metrics (and those too
// unless public_health_and_metrics) needs `Authorization: Bearer KEY`, else 401. The generation routes are then
// rate-limited per key (rate_limiter.h), 429 with Retry-After. Every request the API answers gets one audit line
// (audit_log.h). The order: authenticate, route and validate, check the engine serves, charge the rate limit,
// submit; so a bad or refused request costs its key nothing.
#include <atomic>
#include <chrono>
#include <string>

#include "runtime/engine/engine_status.h"
#include "runtime/engine/request_queue.h"
#include "runtime/frontend/api_keys.h"
#include "runtime/frontend/audit_log.h"
#include "runtime/frontend/completion_job.h"
#include "runtime/frontend/http_server.h"
#include "runtime/frontend/in_flight_requests.h"
#include "runtime/frontend/openai_request.h"
#include "runtime/frontend/request_ids.h"
#include "runtime/frontend/rate_limiter.h"
#include "runtime/frontend/served_model.h"
#include "runtime/frontend/server_metrics.h"

namespace tessera::frontend {

// Who may call the API, how often, and where requests are recorded. Each part is optional (null: off); what the
// pointers name belongs to the caller and outlives the API.
struct AccessControl {
  const ApiKeys* keys = nullptr;          // null: no key needed anywhere
  bool public_health_and_metrics = true;  // with keys: /health and /metrics still answer without one
  RateLimiter* limiter = nullptr;         // null: no rate limits
  RateLimit default_limit;                // a key's unless its line sets its own; the anonymous bucket's without keys
  AuditLog* audit = nullptr;              // null: no audit log
};

struct ApiOptions {
  RequestLimits limits;
  // /health is 200 only while the engine has made progress (a step or an answered heartbeat) this recently.
  std::chrono::seconds max_engine_silence{10};
  int retry_after_seconds = 1;  // Retry-After of 429 and 503 (a rate limit's 429 says its own)
  AccessControl access;
};

class OpenAiApi final : public HttpHandler {
 public:
  OpenAiApi(ServedModel model, runtime::RequestQueue& queue, InFlightRequests& in_flight,
            const runtime::EngineStatus& status, ServerMetrics& metrics, ApiOptions options);
  void handle(HttpRequest request, std::shared_ptr<Exchange> exchange) override;
  const ServedModel& model() const { return model_; }

 private:
  struct RequestContext;
  void authenticate(const HttpRequest& request, RequestContext& context);
  void route(const HttpRequest& request, const std::shared_ptr<Exchange>& exchange, RequestContext& context);
  void generate(ApiKind kind, const HttpRequest& request, const std::shared_ptr<Exchange>& exchange,
                RequestContext& context);
  // Charges the request's cost to its key's bucket; throws the 429 (or the 400 of a request larger than the limit).
  void charge_rate_limit(const RequestContext& context, int64_t tokens);
  AuditRecord audit_record(const HttpRequest& request, const RequestContext& context) const;
  void check_model(const std::optional<std::string>& model) const;
  void check_serving() const;
  std::vector<int32_t> encode_text(const std::string& text, bool add_special) const;
  std::vector<int32_t> render_chat(const std::vector<runtime::ChatMessage>& messages, bool add_generation_prompt) const;
  // The prompt as the audit log shows it: its text (special tokens included), or its ids without a tokenizer.
  std::string prompt_text(const std::vector<int32_t>& ids) const;

  ServedModel model_;
  runtime::RequestQueue& queue_;
  InFlightRequests& in_flight_;
  const runtime::EngineStatus& status_;
  ServerMetrics& metrics_;
  ApiOptions options_;
  RequestIds request_ids_;
};

}  // namespace tessera::frontend
