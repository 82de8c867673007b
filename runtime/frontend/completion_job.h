#pragma once
// One generation request of the HTTP API in flight (/v1/chat/completions or /v1/completions): its choices (n per
// prompt), their detokenizers and stop matchers, and the response it writes, whole or as server-sent events.
//
// Threads: built and started on the connection's strand; the engine thread only pushes into the job's
// ResultStream, whose notifier posts pump() back onto the strand. Ownership: the stream's notifier keeps the job
// alive until every choice has finished (the engine always finishes a request: completion, cancellation, error;
// when the engine cannot, InFlightRequests fails it); then the job detaches, and what is left is freed with the
// last reference.
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/engine/request_queue.h"
#include "runtime/frontend/http_server.h"
#include "runtime/frontend/in_flight_requests.h"
#include "runtime/frontend/openai_request.h"
#include "runtime/frontend/result_stream.h"
#include "runtime/frontend/served_model.h"
#include "runtime/frontend/server_metrics.h"
#include "runtime/frontend/stop_matcher.h"

namespace tessera::frontend {

enum class ApiKind { kChat, kCompletion };

// A prompt as the engine sees it, with what the response needs of it.
struct PreparedPrompt {
  std::vector<int32_t> ids;
  std::string echo_text;  // completions with echo: the prompt's text
};

// What a job reports once its response has ended (the audit log's line is made of it). Tokens as in the response's
// usage.
struct CompletionSummary {
  int status = 200;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::optional<double> queue_seconds;        // the longest of the choices
  std::optional<double> first_token_seconds;  // arrival to the first token shown of any choice
  double total_seconds = 0;                   // arrival to the end
  std::vector<std::string> finish_reasons;    // by choice
  std::vector<std::string> texts;             // by choice, only with CompletionHooks::with_texts
  bool client_disconnected = false;
};

struct CompletionHooks {
  std::function<void(const CompletionSummary&)> on_complete;  // on the strand, once; may be empty
  bool with_texts = false;                                    // fill CompletionSummary::texts
};

class CompletionJob : public std::enable_shared_from_this<CompletionJob> {
 public:
  CompletionJob(ApiKind kind, std::string request_id, const ServedModel& model, GenerationParams params,
                std::vector<PreparedPrompt> prompts, runtime::RequestQueue& queue, InFlightRequests& in_flight,
                ServerMetrics& metrics, std::shared_ptr<Exchange> exchange,
                std::chrono::steady_clock::time_point arrived, CompletionHooks hooks = {});
  // Submits every choice to the engine and starts the response. Throws ApiError before anything was written
  // (429 queue full, 503 closed); then nothing stays submitted.
  void start();

 private:
  struct TokenRecord {
    int32_t id;
    std::optional<kernels::cpu::RowLogprobs> logprobs;
    size_t text_offset;  // bytes of the choice's text before this token
  };
  struct Choice {
    int index = 0;
    int prompt = 0;
    uint64_t ticket = 0;
    std::optional<runtime::IncrementalDetokenizer> detokenizer;
    std::optional<StopMatcher> stop;
    std::string text;             // emitted so far (echo included)
    size_t streamed_text = 0;     // bytes of text already sent
    std::vector<TokenRecord> tokens;   // the generated tokens (for logprobs)
    size_t streamed_tokens = 0;
    std::vector<std::optional<kernels::cpu::RowLogprobs>> prompt_logprobs;  // echo + logprobs, by position
    bool prompt_sent = false;     // stream: the echoed prompt part went out
    bool role_sent = false;       // chat stream: the first delta carried the role
    bool stopped_by_string = false;
    int completion_tokens = 0;
    bool finished = false;
    bool final_sent = false;
    std::string finish_reason;
    std::string error;
    runtime::GenerationResult result;
    std::chrono::steady_clock::time_point last_token;
  };

  runtime::GenerationRequest engine_request(Choice& choice, const PreparedPrompt& prompt, uint64_t group);
  void pump();
  void on_token(Choice& c, const StreamEvent& e);
  void on_finish(Choice& c, const StreamEvent& e);
  void cancel_all();
  void stream_updates();
  void respond_whole();
  std::string chunk_json(Choice& c, bool final);
  // The choice's logprobs for its tokens from `from` on, in the endpoint's shape (null when not asked).
  nlohmann::json logprobs_json(const Choice& c, size_t from, bool with_prompt) const;
  std::string choice_json(Choice& c);
  std::string usage_json() const;
  int64_t prompt_tokens() const;
  int64_t completion_tokens() const;
  void report_completion();
  std::string token_text(int32_t id) const;

  ApiKind kind_;
  std::string id_;
  const ServedModel& model_;
  GenerationParams params_;
  std::vector<PreparedPrompt> prompts_;
  runtime::RequestQueue& queue_;
  InFlightRequests& in_flight_;
  uint64_t in_flight_id_ = 0;
  ServerMetrics& metrics_;
  std::shared_ptr<Exchange> exchange_;
  std::shared_ptr<ResultStream> stream_;
  std::chrono::steady_clock::time_point arrived_;
  std::time_t created_;
  std::vector<Choice> choices_;
  CompletionHooks hooks_;
  std::optional<std::chrono::steady_clock::time_point> first_token_;
  int status_ = 200;  // of the whole response (500: a choice failed)
  bool done_ = false;
};

}  // namespace tessera::frontend
