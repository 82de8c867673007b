#include "runtime/frontend/server_metrics.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <prometheus/text_serializer.h>

namespace tessera::frontend {
namespace {

using prometheus::Histogram;

const Histogram::BucketBoundaries kFirstTokenBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                                        0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0};
const Histogram::BucketBoundaries kTokenBuckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
                                                   0.5,   0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const Histogram::BucketBoundaries kRequestBuckets = {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
                                                     30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0};

Histogram* histogram(prometheus::Registry& registry, const std::string& name, const std::string& help,
                     const prometheus::Labels& labels, const Histogram::BucketBoundaries& buckets) {
  return &prometheus::BuildHistogram().Name(name).Help(help).Register(registry).Add(labels, buckets);
}
prometheus::Gauge* gauge(prometheus::Registry& registry, const std::string& name, const std::string& help,
                         const prometheus::Labels& labels) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add(labels);
}
prometheus::Counter* counter(prometheus::Registry& registry, const std::string& name, const std::string& help,
                             const prometheus::Labels& labels) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add(labels);
}

// utime + stime of one thread of this process, in seconds (0 when it is gone).
double thread_cpu_seconds(int tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0.0;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return 0.0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

ServerMetrics::ServerMetrics(const std::string& model_name)
    : registry_(std::make_shared<prometheus::Registry>()), labels_{{"model_name", model_name}} {
  auto& r = *registry_;
  ttft_ = histogram(r, "tessera:time_to_first_token_seconds", "Time from request arrival to its first token.",
                    labels_, kFirstTokenBuckets);
  itl_ = histogram(r, "tessera:inter_token_latency_seconds", "Time between two tokens of one choice.", labels_,
                   kTokenBuckets);
  e2e_ = histogram(r, "tessera:e2e_request_latency_seconds", "Time from arrival to the last token.", labels_,
                   kRequestBuckets);
  queue_ = histogram(r, "tessera:request_queue_time_seconds", "Time waiting for admission.", labels_, kRequestBuckets);
  prefill_ = histogram(r, "tessera:request_prefill_time_seconds", "Admission to first token.", labels_, kRequestBuckets);
  decode_ = histogram(r, "tessera:request_decode_time_seconds", "First token to last token.", labels_, kRequestBuckets);
  running_ = gauge(r, "tessera:num_requests_running", "Sequences in the running batch.", labels_);
  waiting_ = gauge(r, "tessera:num_requests_waiting", "Sequences waiting for admission.", labels_);
  kv_usage_ = gauge(r, "tessera:kv_cache_usage_perc", "Fraction of KV cache blocks in use (0 to 1).", labels_);
  prompt_tokens_ = counter(r, "tessera:prompt_tokens_total", "Prompt tokens admitted.", labels_);
  generation_tokens_ = counter(r, "tessera:generation_tokens_total", "Tokens generated.", labels_);
  preemptions_ = counter(r, "tessera:num_preemptions_total", "Sequences preempted for want of KV blocks.", labels_);
  prefix_queries_ = counter(r, "tessera:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
                            labels_);
  prefix_hits_ = counter(r, "tessera:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.", labels_);
  steps_ = counter(r, "tessera:engine_steps_total", "Engine steps run.", labels_);
  step_seconds_ = counter(r, "tessera:engine_step_seconds_total",
                          "Wall time of engine steps across the ranks (broadcast, compute, sampling).", labels_);
  plan_seconds_ = counter(r, "tessera:engine_plan_seconds_total",
                          "Leader time spent taking requests, scheduling and handing results over.", labels_);
  frontend_cpu_ = gauge(r, "tessera:frontend_cpu_seconds_total", "CPU time of the HTTP I/O threads.", labels_);
  success_ = &prometheus::BuildCounter()
                  .Name("tessera:request_success_total")
                  .Help("Finished choices by finish reason.")
                  .Register(r);
  for (const char* reason : {"stop", "length", "abort", "error"}) {
    prometheus::Labels l = labels_;
    l["finished_reason"] = reason;
    success_->Add(l);
  }
  rejected_ = &prometheus::BuildCounter()
                   .Name("tessera:request_rejected_total")
                   .Help("Requests refused by access control or rate limits, by reason.")
                   .Register(r);
  for (const char* reason :
       {"missing_key", "invalid_key", "rate_limit_requests", "rate_limit_tokens", "rate_limit_too_large"}) {
    prometheus::Labels l = labels_;
    l["reason"] = reason;
    rejected_->Add(l);
  }
}

void ServerMetrics::on_step(const runtime::StepReport& report) {
  running_->Set(static_cast<double>(report.running));
  waiting_->Set(static_cast<double>(report.waiting));
  kv_usage_->Set(report.kv_total_blocks > 0
                     ? static_cast<double>(report.kv_used_blocks) / static_cast<double>(report.kv_total_blocks)
                     : 0.0);
  const auto delta = [](uint64_t now, uint64_t& last) {
    const double d = static_cast<double>(now - last);
    last = now;
    return d;
  };
  prompt_tokens_->Increment(delta(report.totals.prompt_tokens, last_.prompt_tokens));
  generation_tokens_->Increment(delta(report.totals.generated_tokens, last_.generated_tokens));
  preemptions_->Increment(delta(report.totals.preemptions, last_.preemptions));
  prefix_queries_->Increment(delta(report.totals.prefix_query_tokens, last_.prefix_query_tokens));
  prefix_hits_->Increment(delta(report.totals.prefix_hit_tokens, last_.prefix_hit_tokens));
  steps_->Increment();
  step_seconds_->Increment(report.execute_seconds);
  plan_seconds_->Increment(report.plan_seconds);
}

void ServerMetrics::observe_finished(const std::string& reason, double e2e, double queue, double prefill,
                                     double decode) {
  prometheus::Labels l = labels_;
  l["finished_reason"] = reason;
  success_->Add(l).Increment();
  e2e_->Observe(e2e);
  queue_->Observe(queue);
  prefill_->Observe(prefill);
  decode_->Observe(decode);
}

void ServerMetrics::observe_rejected(const std::string& reason) {
  prometheus::Labels l = labels_;
  l["reason"] = reason;
  rejected_->Add(l).Increment();
}

void ServerMetrics::add_frontend_thread(int tid) {
  std::lock_guard lock(threads_mutex_);
  frontend_threads_.push_back(tid);
}

std::string ServerMetrics::serialize() {
  double cpu = 0.0;
  {
    std::lock_guard lock(threads_mutex_);
    for (const int tid : frontend_threads_) cpu += thread_cpu_seconds(tid);
  }
  frontend_cpu_->Set(cpu);
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace tessera::frontend
