#include "runtime/frontend/completion_job.h"

#include <boost/asio/post.hpp>

#include <nlohmann/json.hpp>
#include <random>

#include "runtime/frontend/api_error.h"

namespace tessera::frontend {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

uint64_t mix_seed(uint64_t seed, uint64_t index) {  // splitmix64 of (seed, index): unrelated streams per choice
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fresh_seed() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return generator();
}

json bytes_of(const std::string& s) {
  json out = json::array();
  for (const unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

}  // namespace

CompletionJob::CompletionJob(ApiKind kind, std::string request_id, const ServedModel& model, GenerationParams params,
                             std::vector<PreparedPrompt> prompts, runtime::RequestQueue& queue,
                             InFlightRequests& in_flight, ServerMetrics& metrics, std::shared_ptr<Exchange> exchange,
                             Clock::time_point arrived, CompletionHooks hooks)
    : kind_(kind), id_(std::move(request_id)), model_(model), params_(std::move(params)), prompts_(std::move(prompts)),
      queue_(queue), in_flight_(in_flight), metrics_(metrics), exchange_(std::move(exchange)), arrived_(arrived),
      created_(std::time(nullptr)), hooks_(std::move(hooks)) {
  const int n = params_.n;
  choices_.resize(prompts_.size() * static_cast<size_t>(n));
  for (size_t p = 0; p < prompts_.size(); ++p) {
    for (int j = 0; j < n; ++j) {
      Choice& c = choices_[p * static_cast<size_t>(n) + static_cast<size_t>(j)];
      c.index = static_cast<int>(p) * n + j;
      c.prompt = static_cast<int>(p);
      if (model_.tokenizer) c.detokenizer.emplace(*model_.tokenizer, params_.skip_special_tokens, false);
      if (!params_.stop.empty()) c.stop.emplace(params_.stop);
      if (params_.echo) {
        c.text = prompts_[p].echo_text;
        if (params_.logprobs) c.prompt_logprobs.resize(prompts_[p].ids.size());
      }
    }
  }
}

runtime::GenerationRequest CompletionJob::engine_request(Choice& c, const PreparedPrompt& prompt, uint64_t group) {
  runtime::GenerationRequest r;
  r.prompt = prompt.ids;
  const int room = model_.max_model_len - static_cast<int>(prompt.ids.size());
  const int wanted = params_.max_tokens ? *params_.max_tokens : room;
  r.max_new_tokens = std::max(1, wanted);  // max_tokens 0 (echo scoring): one token is made and not shown
  auto& s = r.sampling;
  s.temperature = params_.temperature;
  s.top_k = params_.top_k;
  s.top_p = params_.top_p;
  s.min_p = params_.min_p;
  const uint64_t choice_in_prompt = static_cast<uint64_t>(c.index % params_.n);
  s.seed = params_.seed ? (choice_in_prompt == 0 ? *params_.seed : mix_seed(*params_.seed, choice_in_prompt))
                        : fresh_seed();
  s.repetition_penalty = params_.repetition_penalty;
  s.frequency_penalty = params_.frequency_penalty;
  s.presence_penalty = params_.presence_penalty;
  s.logprobs = static_cast<int8_t>(params_.logprobs ? *params_.logprobs : -1);
  s.prompt_logprobs = static_cast<int8_t>(params_.echo && params_.logprobs ? *params_.logprobs : -1);
  if (!params_.ignore_eos) r.stop_ids = model_.end_of_generation_ids;
  r.sibling_group = params_.n > 1 ? group : 0;
  const int index = c.index;
  std::shared_ptr<ResultStream> stream = stream_;
  r.on_token = [stream, index](const runtime::TokenEvent& t) {
    StreamEvent e;
    e.kind = StreamEvent::Kind::kToken;
    e.choice = index;
    e.token = t.token;
    if (t.logprobs) e.logprobs = *t.logprobs;
    stream->push(std::move(e));
  };
  r.on_prompt_logprobs = [stream, index](int position, const kernels::cpu::RowLogprobs& lp) {
    StreamEvent e;
    e.kind = StreamEvent::Kind::kPromptLogprobs;
    e.choice = index;
    e.position = position;
    e.logprobs = lp;
    stream->push(std::move(e));
  };
  r.on_finish = [stream, index](const runtime::GenerationResult& result) {
    StreamEvent e;
    e.kind = StreamEvent::Kind::kFinish;
    e.choice = index;
    e.result = result;
    stream->push(std::move(e));
  };
  return r;
}

void CompletionJob::start() {
  stream_ = std::make_shared<ResultStream>();
  auto self = shared_from_this();
  stream_->set_notify([self] { boost::asio::post(self->exchange_->executor(), [self] { self->pump(); }); });
  const uint64_t group = params_.n > 1 ? queue_.new_sibling_group() : 0;
  std::vector<uint64_t> submitted;
  try {
    if (queue_.waiting() + choices_.size() > queue_.max_waiting()) {
      throw runtime::QueueFull("the waiting queue is full (" + std::to_string(queue_.max_waiting()) +
                               " requests): retry later");
    }
    for (Choice& c : choices_) {
      c.ticket = queue_.submit(engine_request(c, prompts_[static_cast<size_t>(c.prompt)], group));
      submitted.push_back(c.ticket);
    }
  } catch (const runtime::QueueFull& e) {
    for (const uint64_t t : submitted) queue_.cancel(t);
    stream_->detach();
    throw ApiError(429, e.what(), "rate_limit_error");
  } catch (const runtime::QueueClosed& e) {
    for (const uint64_t t : submitted) queue_.cancel(t);
    stream_->detach();
    throw ApiError(503, e.what(), "service_unavailable");
  }
  in_flight_id_ = in_flight_.add(stream_, static_cast<int>(choices_.size()));
  std::weak_ptr<CompletionJob> weak = self;
  exchange_->on_disconnect([weak] {
    if (auto job = weak.lock()) job->cancel_all();
  });
  if (params_.stream) exchange_->begin_stream({{"X-Request-Id", id_}});
}

void CompletionJob::cancel_all() {
  for (const Choice& c : choices_) queue_.cancel(c.ticket);  // finished tickets are ignored
}

std::string CompletionJob::token_text(int32_t id) const {
  if (params_.return_tokens_as_token_ids || !model_.tokenizer) return "token_id:" + std::to_string(id);
  return model_.tokenizer->token_to_piece(id);
}

void CompletionJob::on_token(Choice& c, const StreamEvent& e) {
  if (c.finished) return;  // a stop string ended the text; the engine's last tokens are dropped
  if (params_.max_tokens && *params_.max_tokens == 0) return;  // echo scoring: nothing generated is shown
  if (c.tokens.empty()) {
    metrics_.observe_time_to_first_token(seconds(e.at - arrived_));
  } else {
    metrics_.observe_inter_token_latency(seconds(e.at - c.last_token));
  }
  c.last_token = e.at;
  if (!first_token_ || e.at < *first_token_) first_token_ = e.at;
  ++c.completion_tokens;
  c.tokens.push_back({e.token, e.logprobs, c.text.size()});
  const std::string piece = c.detokenizer ? c.detokenizer->push(e.token) : std::string();
  c.text += c.stop ? c.stop->push(piece) : piece;
  if (c.stop && c.stop->stopped()) {
    c.finished = true;
    c.stopped_by_string = true;
    c.finish_reason = "stop";
    queue_.cancel(c.ticket);
  }
}

void CompletionJob::on_finish(Choice& c, const StreamEvent& e) {
  c.result = e.result;
  if (c.result.finish_reason.empty()) c.result.finish_reason = "error";
  if (!c.finished) {
    std::string tail = c.detokenizer ? c.detokenizer->flush() : std::string();
    if (c.stop) {
      tail = c.stop->push(tail);
      if (!c.stop->stopped()) tail += c.stop->flush();
    }
    c.text += tail;
    const std::string& reason = c.result.finish_reason;
    c.finish_reason = reason == "cancelled" ? "abort" : reason;
    if (c.stop && c.stop->stopped()) c.finish_reason = "stop";
    if (reason == "error") c.error = c.result.error.empty() ? "the engine failed" : c.result.error;
    c.finished = true;
  }
  if (params_.max_tokens && *params_.max_tokens == 0 && c.finish_reason != "error" && c.finish_reason != "abort") {
    c.finish_reason = "length";
  }
  metrics_.observe_finished(c.finish_reason == "error" ? "error" : c.finish_reason, seconds(e.at - arrived_),
                            c.result.queue_seconds, c.result.prefill_seconds, c.result.decode_seconds);
}

void CompletionJob::pump() {
  if (done_) return;
  for (const StreamEvent& e : stream_->take()) {
    if (e.choice < 0 || static_cast<size_t>(e.choice) >= choices_.size()) continue;
    Choice& c = choices_[static_cast<size_t>(e.choice)];
    switch (e.kind) {
      case StreamEvent::Kind::kToken: on_token(c, e); break;
      case StreamEvent::Kind::kPromptLogprobs:
        if (e.position >= 0 && static_cast<size_t>(e.position) < c.prompt_logprobs.size()) {
          c.prompt_logprobs[static_cast<size_t>(e.position)] = e.logprobs;
        }
        break;
      case StreamEvent::Kind::kFinish:
        // The first finish counts: a failure reported beside the engine (InFlightRequests) may follow the
        // engine's own, or precede it.
        if (c.result.finish_reason.empty()) on_finish(c, e);
        break;
    }
  }
  bool all_done = true;
  for (const Choice& c : choices_) all_done = all_done && !c.result.finish_reason.empty();
  if (params_.stream) {
    stream_updates();
  } else if (all_done) {
    respond_whole();
  }
  if (all_done) {
    done_ = true;
    in_flight_.remove(in_flight_id_);
    report_completion();
    stream_->detach();  // releases the notifier's reference: the job ends with its last user
  }
}

void CompletionJob::report_completion() {
  if (!hooks_.on_complete) return;
  CompletionSummary s;
  s.status = status_;
  s.prompt_tokens = prompt_tokens();
  s.completion_tokens = completion_tokens();
  for (const Choice& c : choices_) {
    s.queue_seconds = std::max(s.queue_seconds.value_or(0.0), c.result.queue_seconds);
    s.finish_reasons.push_back(c.finish_reason);
    if (hooks_.with_texts) s.texts.push_back(c.text);
  }
  if (first_token_) s.first_token_seconds = seconds(*first_token_ - arrived_);
  s.total_seconds = seconds(Clock::now() - arrived_);
  s.client_disconnected = !exchange_->connected();
  hooks_.on_complete(s);
}

int64_t CompletionJob::prompt_tokens() const {
  int64_t n = 0;
  for (const PreparedPrompt& p : prompts_) n += static_cast<int64_t>(p.ids.size());
  return n;
}

int64_t CompletionJob::completion_tokens() const {
  int64_t n = 0;
  for (const Choice& c : choices_) n += c.completion_tokens;
  return n;
}

std::string CompletionJob::usage_json() const {
  const int64_t prompt = prompt_tokens(), completion = completion_tokens();
  int cached = 0;
  for (const Choice& c : choices_) {
    if (c.index % params_.n == 0) cached += c.result.cached_prompt_tokens;
  }
  return dump(json{{"prompt_tokens", prompt},
                   {"completion_tokens", completion},
                   {"total_tokens", prompt + completion},
                   {"prompt_tokens_details", {{"cached_tokens", cached}}}});
}

namespace {

json chat_logprob_entry(const std::string& text, const kernels::cpu::RowLogprobs& lp,
                        const std::function<std::string(int32_t)>& piece) {
  json top = json::array();
  for (const auto& t : lp.top) {
    const std::string s = piece(t.id);
    top.push_back({{"token", s}, {"logprob", t.logprob}, {"bytes", bytes_of(s)}});
  }
  return {{"token", text}, {"logprob", lp.chosen.logprob}, {"bytes", bytes_of(text)}, {"top_logprobs", top}};
}

}  // namespace

nlohmann::json CompletionJob::logprobs_json(const Choice& c, size_t from, bool with_prompt) const {
  if (!params_.logprobs) return nullptr;
  const auto piece = [this](int32_t id) { return token_text(id); };
  if (kind_ == ApiKind::kChat) {  // choices[].logprobs.content[]: token, logprob, bytes, top_logprobs
    json content = json::array();
    for (size_t i = from; i < c.tokens.size(); ++i) {
      if (c.tokens[i].logprobs) content.push_back(chat_logprob_entry(piece(c.tokens[i].id), *c.tokens[i].logprobs, piece));
    }
    return {{"content", content}};
  }
  // Completions (the legacy arrays lm-evaluation-harness reads): the echoed prompt's tokens first, the first of
  // them without a logprob.
  json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  const auto add = [&](int32_t id, const std::optional<kernels::cpu::RowLogprobs>& lp, size_t offset) {
    out["tokens"].push_back(piece(id));
    out["text_offset"].push_back(offset);
    if (!lp) {
      out["token_logprobs"].push_back(nullptr);
      out["top_logprobs"].push_back(nullptr);
      return;
    }
    out["token_logprobs"].push_back(lp->chosen.logprob);
    json top = json::object();
    for (const auto& t : lp->top) top[piece(t.id)] = t.logprob;
    out["top_logprobs"].push_back(top);
  };
  if (with_prompt) {
    const std::vector<int32_t>& ids = prompts_[static_cast<size_t>(c.prompt)].ids;
    size_t offset = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      add(ids[i], i < c.prompt_logprobs.size() ? c.prompt_logprobs[i] : std::nullopt, offset);
      offset += token_text(ids[i]).size();
    }
  }
  for (size_t i = from; i < c.tokens.size(); ++i) add(c.tokens[i].id, c.tokens[i].logprobs, c.tokens[i].text_offset);
  return out;
}

std::string CompletionJob::choice_json(Choice& c) {
  json choice = {{"index", c.index}, {"finish_reason", c.finish_reason}};
  if (kind_ == ApiKind::kChat) {
    choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    choice["logprobs"] = logprobs_json(c, 0, false);
  } else {
    choice["text"] = c.text;
    choice["logprobs"] = logprobs_json(c, 0, params_.echo);
  }
  return dump(choice);
}

void CompletionJob::respond_whole() {
  for (const Choice& c : choices_) {
    if (!c.error.empty()) {
      status_ = 500;
      exchange_->respond(500, "application/json",
                         ApiError(500, "generation failed: " + c.error, "internal_error").body(),
                         {{"X-Request-Id", id_}});
      return;
    }
  }
  std::string body = "{\"id\":\"" + std::string(kind_ == ApiKind::kChat ? "chatcmpl-" : "cmpl-") + id_ +
                     "\",\"object\":\"" + (kind_ == ApiKind::kChat ? "chat.completion" : "text_completion") +
                     "\",\"created\":" + std::to_string(created_) + ",\"model\":" + dump(json(model_.name)) +
                     ",\"choices\":[";
  for (size_t i = 0; i < choices_.size(); ++i) {
    if (i) body += ",";
    body += choice_json(choices_[i]);
  }
  body += "],\"usage\":" + usage_json() + "}";
  exchange_->respond(200, "application/json", std::move(body), {{"X-Request-Id", id_}});
}

std::string CompletionJob::chunk_json(Choice& c, bool final) {
  const std::string text = c.text.substr(c.streamed_text);
  c.streamed_text = c.text.size();
  const size_t from = c.streamed_tokens;
  c.streamed_tokens = c.tokens.size();
  json choice = {{"index", c.index}, {"finish_reason", final ? json(c.finish_reason) : json(nullptr)}};
  if (kind_ == ApiKind::kChat) {
    json delta = json::object();
    if (!c.role_sent) {
      delta["role"] = "assistant";
      c.role_sent = true;
    }
    if (!text.empty() || !final) delta["content"] = text;
    choice["delta"] = delta;
    choice["logprobs"] = logprobs_json(c, from, false);
  } else {
    choice["text"] = text;
    choice["logprobs"] = logprobs_json(c, from, params_.echo && !c.prompt_sent);
    c.prompt_sent = true;
  }
  const json chunk = {{"id", std::string(kind_ == ApiKind::kChat ? "chatcmpl-" : "cmpl-") + id_},
                      {"object", kind_ == ApiKind::kChat ? "chat.completion.chunk" : "text_completion"},
                      {"created", created_},
                      {"model", model_.name},
                      {"choices", json::array({choice})}};
  return "data: " + dump(chunk) + "\n\n";
}

void CompletionJob::stream_updates() {
  std::string out;
  bool all_final = true;
  for (Choice& c : choices_) {
    if (!c.error.empty()) {
      if (!c.final_sent) {
        c.final_sent = true;
        out += "data: " + ApiError(500, "generation failed: " + c.error, "internal_error").body() + "\n\n";
      }
      continue;
    }
    // A token that is only part of a character adds no text: no delta for it, unless its logprobs are asked for.
    const bool has_news = c.text.size() > c.streamed_text || (params_.logprobs && c.tokens.size() > c.streamed_tokens) ||
                          (kind_ == ApiKind::kChat && !c.role_sent);
    if (c.finished && !c.final_sent) {
      // The last text and the finish reason; a chat stream's first delta carries the role.
      if (kind_ == ApiKind::kChat && !c.role_sent) out += chunk_json(c, false);
      out += chunk_json(c, true);
      c.final_sent = true;
    } else if (!c.finished && has_news) {
      out += chunk_json(c, false);
    }
    all_final = all_final && c.final_sent;
  }
  bool all_done = true;
  for (const Choice& c : choices_) all_done = all_done && !c.result.finish_reason.empty();
  if (all_done && all_final) {
    if (params_.include_usage) {
      const json usage_chunk = {{"id", std::string(kind_ == ApiKind::kChat ? "chatcmpl-" : "cmpl-") + id_},
                                {"object", kind_ == ApiKind::kChat ? "chat.completion.chunk" : "text_completion"},
                                {"created", created_},
                                {"model", model_.name},
                                {"choices", json::array()},
                                {"usage", json::parse(usage_json())}};
      out += "data: " + dump(usage_chunk) + "\n\n";
    }
    out += "data: [DONE]\n\n";
  }
  if (!out.empty()) exchange_->send(std::move(out));
  if (all_done && all_final) exchange_->end_stream();
}

}  // namespace tessera::frontend
