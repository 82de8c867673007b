#pragma once
// The OpenAI-compatible HTTP API on top of the engine: routes, validation, tokenization and chat rendering on the
// I/O threads, generation through the RequestQueue (runtime/frontend/completion_job.h), health from the
// EngineStatus, metrics from ServerMetrics.
//   POST /v1/chat/completions, /v1/completions, /tokenize, /detokenize;  GET /v1/models, /health, /metrics.
// Every response carries X-Request-Id (the client's, or one made here).
#include <atomic>
#include <chrono>
#include <string>

#include "runtime/engine/engine_status.h"
#include "runtime/engine/request_queue.h"
#include "runtime/frontend/completion_job.h"
#include "runtime/frontend/http_server.h"
#include "runtime/frontend/in_flight_requests.h"
#include "runtime/frontend/openai_request.h"
#include "runtime/frontend/served_model.h"
#include "runtime/frontend/server_metrics.h"

namespace tessera::frontend {

struct ApiOptions {
  RequestLimits limits;
  // /health is 200 only while the engine has made progress (a step or an answered heartbeat) this recently.
  std::chrono::seconds max_engine_silence{10};
  int retry_after_seconds = 1;  // Retry-After of 429 and 503
};

class OpenAiApi final : public HttpHandler {
 public:
  OpenAiApi(ServedModel model, runtime::RequestQueue& queue, InFlightRequests& in_flight,
            const runtime::EngineStatus& status, ServerMetrics& metrics, ApiOptions options);
  void handle(HttpRequest request, std::shared_ptr<Exchange> exchange) override;
  const ServedModel& model() const { return model_; }

 private:
  void route(const HttpRequest& request, const std::shared_ptr<Exchange>& exchange, const std::string& request_id);
  void generate(ApiKind kind, const HttpRequest& request, const std::shared_ptr<Exchange>& exchange,
                const std::string& request_id);
  void check_model(const std::optional<std::string>& model) const;
  void check_serving() const;
  std::vector<int32_t> encode_text(const std::string& text, bool add_special) const;
  std::vector<int32_t> render_chat(const std::vector<runtime::ChatMessage>& messages, bool add_generation_prompt) const;
  std::string next_request_id();

  ServedModel model_;
  runtime::RequestQueue& queue_;
  InFlightRequests& in_flight_;
  const runtime::EngineStatus& status_;
  ServerMetrics& metrics_;
  ApiOptions options_;
  std::atomic<uint64_t> next_id_{1};
  const std::string id_prefix_;
};

}  // namespace tessera::frontend
