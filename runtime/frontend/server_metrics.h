#pragma once
// The server's Prometheus metrics (prometheus-cpp, text format at GET /metrics), named like vLLM's with the prefix
// tessera: and the label model_name, so that existing dashboards need only the prefix changed. Latency histograms
// are observed on the connections' strands from the engine's timestamps; engine gauges and counters come from the
// engine thread through EngineObserver. Every method is thread-safe and never blocks.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "runtime/engine/engine_observer.h"

namespace tessera::frontend {

class ServerMetrics final : public runtime::EngineObserver {
 public:
  explicit ServerMetrics(const std::string& model_name);

  void on_step(const runtime::StepReport& report) override;

  void observe_time_to_first_token(double seconds) { ttft_->Observe(seconds); }
  void observe_inter_token_latency(double seconds) { itl_->Observe(seconds); }
  // A finished choice: its latencies and why it ended ("stop", "length", "abort", "error").
  void observe_finished(const std::string& reason, double e2e_seconds, double queue_seconds, double prefill_seconds,
                        double decode_seconds);
  // A request refused before it reached the engine by access control or a rate limit: "missing_key",
  // "invalid_key", "rate_limit_requests", "rate_limit_tokens", "rate_limit_too_large".
  void observe_rejected(const std::string& reason);
  // The I/O threads whose CPU time /metrics reports as frontend time.
  void add_frontend_thread(int tid);
  // The exposition text.
  std::string serialize();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Labels labels_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* itl_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* queue_;
  prometheus::Histogram* prefill_;
  prometheus::Histogram* decode_;
  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* kv_usage_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Counter* preemptions_;
  prometheus::Counter* prefix_queries_;
  prometheus::Counter* prefix_hits_;
  prometheus::Counter* steps_;
  prometheus::Counter* step_seconds_;
  prometheus::Counter* plan_seconds_;
  prometheus::Gauge* frontend_cpu_;
  prometheus::Family<prometheus::Counter>* success_;
  prometheus::Family<prometheus::Counter>* rejected_;
  runtime::SchedulerStats last_;  // engine thread only
  std::mutex threads_mutex_;
  std::vector<int> frontend_threads_;
};

}  // namespace tessera::frontend
