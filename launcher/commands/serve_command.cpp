// `tessera serve`: the model as an OpenAI-compatible HTTP server. Every rank runs this command under mpirun; rank 0
// listens, owns the scheduler and drives the engine; the others follow its step plans.
//
// Rank 0's threads: the main thread is the engine thread (the only one that calls MPI); the HTTP I/O threads
// (runtime/frontend/http_server.h) parse, validate, tokenize and write responses, and reach the engine only
// through the RequestQueue. Signals: SIGUSR1 drains (no new requests, in-flight ones finish up to --drain-timeout,
// then every rank exits 0), and so does SIGTERM under srun; SIGINT, and SIGTERM under mpirun, stop now (in-flight
// requests end with an error). Followers ignore them: the leader's shutdown plan ends them, so no rank leaves alone.
//
// Run-time failures (a rank killed, stopped, cut off, or throwing inside a step) are the rank watchdog's
// (parallel/rank_watchdog.h): it ends every rank within peer_timeout / step_timeout, and on the leader it first
// turns /health to 503 and ends every in-flight request with an error (InFlightRequests), because the engine
// thread may be blocked for good in a collective with the failed rank.
#include <unistd.h>
#include <sys/syscall.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "kernels/base/error.h"
#include "launcher/commands/commands.h"
#include "launcher/config_overrides.h"
#include "launcher/cpu_threads.h"
#include "launcher/layout_report.h"
#include "launcher/replica_roles.h"
#include "launcher/serve_options.h"
#include "parallel/collective_failure.h"
#include "parallel/mpi/mpi_communicator.h"
#include "parallel/mpi/mpi_session.h"
#include "runtime/engine/replica.h"
#include "runtime/frontend/api_error.h"
#include "runtime/frontend/api_keys.h"
#include "runtime/frontend/audit_log.h"
#include "runtime/frontend/http_server.h"
#include "runtime/frontend/in_flight_requests.h"
#include "runtime/frontend/openai_api.h"
#include "runtime/frontend/rate_limiter.h"
#include "runtime/frontend/request_ids.h"
#include "runtime/frontend/server_metrics.h"
#include "runtime/model/model_tokenizer.h"
#include "runtime/model/pipeline_partition.h"

namespace tessera::launcher {
namespace {

// The front door of rank 0's HTTP server: answers 503 until the API is installed (the model is still loading), then
// hands every request to it. Requests that never reach the API (the 503s here, and what the HTTP layer refuses
// itself: timeouts, oversize, malformed HTTP) get their audit line here.
class LoadingGate final : public frontend::HttpHandler {
 public:
  void install(frontend::HttpHandler* api) { api_.store(api); }
  void set_audit(frontend::AuditLog* audit) { audit_ = audit; }
  void handle(frontend::HttpRequest request, std::shared_ptr<frontend::Exchange> exchange) override {
    if (frontend::HttpHandler* api = api_.load()) return api->handle(std::move(request), std::move(exchange));
    const std::string id = ids_.next();
    exchange->respond(503, "application/json",
                      frontend::ApiError(503, "the model is still loading", "service_unavailable").body(),
                      {{"Retry-After", "5"}, {"X-Request-Id", id}});
    audit({std::chrono::system_clock::now(), id, request.remote, request.method, request.target, 503},
          "service_unavailable");
  }
  void refused(const frontend::RefusedRequest& request) override { audit(request, "invalid_request_error"); }

 private:
  void audit(const frontend::RefusedRequest& r, const char* error_type) {
    if (!audit_) return;
    frontend::AuditRecord record;
    record.time = r.time;
    record.request_id = r.request_id;
    record.client = r.remote;
    record.method = r.method;
    record.route = r.target.substr(0, r.target.find('?'));
    record.status = r.status;
    record.error_type = error_type;
    audit_->write(record);
  }

  std::atomic<frontend::HttpHandler*> api_{nullptr};
  frontend::AuditLog* audit_ = nullptr;  // set before the server starts
  frontend::RequestIds ids_;
};

runtime::ReplicaOptions replica_options(const ServeOptions& o, const parallel::ParallelLayout& layout) {
  runtime::ReplicaOptions r;
  r.model = o.model;
  r.verify_sha256 = o.verify_sha256;
  r.layout = layout;
  r.backend = o.backend;
  r.weight_format = kernels::cpu::parse_weight_format(o.weight_dtype);
  r.kv_dtype = kernels::cpu::parse_kv_dtype(o.kv_cache_dtype);
  r.block_size = o.kv_block_size;
  r.max_sequence_length = o.max_model_len > 0 ? o.max_model_len : -1;
  r.max_sequences = o.max_num_seqs;
  r.max_step_tokens = o.max_num_batched_tokens;
  r.prefix_caching = !o.no_prefix_caching;
  r.micro_batches = o.micro_batches;
  r.pipeline_transfer = o.pp_transfer;
  r.kv_cache.blocks = o.kv_cache_blocks;
  r.kv_cache.memory_bytes = o.kv_cache_memory_bytes;
  r.kv_cache.memory_fraction = o.kv_cache_memory_fraction;
  r.kv_cache.ranks_on_node = local_ranks();
  return r;
}

// What SIGTERM means depends on who sends it. srun (scancel, the end of the time limit) sends it to every task and
// SIGKILL only KillWait seconds later: time for a drain. mpirun sends it to end the ranks now (after a failed rank,
// or passing on its own SIGTERM, with SIGKILL a second or two behind): stop at once, failing what is in flight.
// Ranks that mpirun starts carry its contact URI in their environment, also inside a Slurm allocation.
bool launched_by_srun() {
  return std::getenv("SLURM_STEP_ID") != nullptr && std::getenv("OMPI_MCA_orte_hnp_uri") == nullptr;
}

parallel::RankWatchdogOptions watchdog_options(const ServeOptions& o) {
  parallel::RankWatchdogOptions w;
  w.peer_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.peer_timeout_seconds * 1000));
  w.step_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.step_timeout_seconds * 1000));
  // A heartbeat every second, and at least three within the timeout, so that one late beat is not a failure.
  w.heartbeat_interval = std::min(std::chrono::milliseconds(1000), w.peer_timeout / 3);
  return w;
}

// The leader's part when the watchdog ends the job: /health says why, every client gets its error, and the I/O
// threads get a moment to write them before the process exits.
// The wait stays well inside the peer timeout: the watchdog thread that runs this may be the one whose heartbeats
// keep the followers from leaving on their own (and printing a second message).
void fail_serving(const std::string& message, runtime::EngineStatus& status, frontend::InFlightRequests& in_flight,
                  std::chrono::milliseconds peer_timeout) {
  status.fail(message);
  in_flight.fail_all("the engine failed: " + message);
  const auto deadline = std::chrono::steady_clock::now() + std::min(std::chrono::milliseconds(2000), peer_timeout / 3);
  while (in_flight.size() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the last writes leave the socket buffers
}

// The API's keys, rate limiter and audit log (each only when asked for), made on rank 0 before the server listens,
// so that a bad key file or an audit log that cannot be opened fails the start with a clear message.
struct Access {
  std::unique_ptr<frontend::ApiKeys> keys;
  std::unique_ptr<frontend::RateLimiter> limiter;
  std::unique_ptr<frontend::AuditLog> audit;
  frontend::AccessControl control;
};

std::unique_ptr<Access> make_access(const ServeOptions& o) {
  auto a = std::make_unique<Access>();
  if (!o.api_key_file.empty()) a->keys = std::make_unique<frontend::ApiKeys>(frontend::ApiKeys::load(o.api_key_file));
  a->control.keys = a->keys.get();
  a->control.public_health_and_metrics = !o.no_public_health_and_metrics;
  a->control.default_limit = {o.rate_limit_rpm, o.rate_limit_tpm};
  bool limited = !a->control.default_limit.unlimited();
  if (a->keys) {
    for (const frontend::ApiKey& k : a->keys->keys()) {
      limited = limited || k.requests_per_minute.value_or(0) > 0 || k.tokens_per_minute.value_or(0) > 0;
    }
  }
  if (limited) a->limiter = std::make_unique<frontend::RateLimiter>();
  a->control.limiter = a->limiter.get();
  if (!o.audit_log.empty()) a->audit = std::make_unique<frontend::AuditLog>(o.audit_log, o.audit_log_content);
  a->control.audit = a->audit.get();

  // What guards the API, in one line (never a key).
  std::string line = "tessera: access: ";
  if (a->keys) {
    line += concat(a->keys->keys().size(), " API key(s) from ", o.api_key_file, "; /health and /metrics ",
                   a->control.public_health_and_metrics ? "public" : "need a key");
  } else {
    line += "no API key needed";
  }
  const auto limit_text = [](int64_t n, const char* unit) {
    return n > 0 ? concat(n, " ", unit, "/min") : std::string("no ") + unit + " limit";
  };
  line += concat("; rate limits (default", a->keys ? " per key" : ", all clients together", "): ",
                 limit_text(o.rate_limit_rpm, "requests"), ", ", limit_text(o.rate_limit_tpm, "tokens"));
  line += a->audit ? concat("; audit log ", o.audit_log, o.audit_log_content ? " (with prompts and completions)" : "")
                   : std::string("; no audit log");
  std::fprintf(stderr, "%s\n", line.c_str());
  if (!a->keys && o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1") {
    std::fprintf(stderr, "tessera: warning: listening on %s without --api-key-file: whoever reaches the port can use "
                         "the API\n", o.host.c_str());
  }
  return a;
}


int lead(runtime::Replica& replica, const ServeOptions& o, frontend::HttpServer& server, LoadingGate& gate,
         runtime::EngineStatus& status, frontend::ServerMetrics& metrics, frontend::InFlightRequests& in_flight,
         parallel::RankWatchdog& watchdog, const runtime::Tokenizer* tokenizer,
         const frontend::AccessControl& access) {
  // A heartbeat is due every second: two missed ones are worth naming when the job is stopped from outside.
  const auto silence_worth_naming = std::chrono::milliseconds(2000);
  frontend::ServedModel model;
  model.name = o.served_model_name;
  model.tokenizer = tokenizer;
  if (tokenizer) {
    try {
      std::optional<runtime::ChatFamily> family;
      if (!o.chat_template.empty()) family = runtime::parse_chat_family(o.chat_template);
      model.chat_template = runtime::ChatTemplate::for_tokenizer(*tokenizer, family);
    } catch (const Error& e) {
      std::fprintf(stderr, "tessera: warning: no chat template (%s): /v1/chat/completions is off\n", e.what());
    }
    model.end_of_generation_ids = tokenizer->end_of_generation_ids();
  } else {
    model.end_of_generation_ids = replica.config().eos_token_ids;
  }
  model.max_model_len = replica.max_sequence_length();
  model.vocab_size = replica.config().vocab_size;
  model.kv_block_size = o.kv_block_size;
  model.kv_blocks = replica.kv_blocks();
  model.created = std::time(nullptr);

  runtime::RequestQueue queue(static_cast<size_t>(o.max_queue));
  frontend::ApiOptions api_options;
  api_options.limits.max_messages = o.max_messages;
  api_options.limits.max_n = o.max_n;
  api_options.access = access;
  frontend::OpenAiApi api(model, queue, in_flight, status, metrics, api_options);
  std::atomic<bool> stop_now{false};

  auto& io = server.io_context();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM, SIGUSR1);
  boost::asio::steady_timer drain_deadline(io);
  const bool sigterm_drains = launched_by_srun();
  std::function<void(const boost::system::error_code&, int)> on_signal;
  on_signal = [&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    const bool drain = signal_number == SIGUSR1 || (signal_number == SIGTERM && sigterm_drains);
    if (drain && status.state() == runtime::EngineState::kReady) {
      std::fprintf(stderr, "tessera: signal %d: draining: no new requests; in-flight ones get up to %d s\n",
                   signal_number, o.drain_timeout_seconds);
      status.set_state(runtime::EngineState::kDraining);
      queue.close();
      drain_deadline.expires_after(std::chrono::seconds(o.drain_timeout_seconds));
      drain_deadline.async_wait([&](const boost::system::error_code& timer_ec) {
        if (timer_ec) return;
        std::fprintf(stderr, "tessera: drain timeout: ending the requests still in flight\n");
        stop_now.store(true);
        queue.wake();
      });
    } else if (!drain) {
      const std::string silent = watchdog.silent_peers(silence_worth_naming);
      std::fprintf(stderr, "tessera: signal %d: stopping now%s%s\n", signal_number,
                   silent.empty() ? "" : "; ranks not heard from (stopped, hung or cut off): ", silent.c_str());
      watchdog.already_reported();
      status.set_state(runtime::EngineState::kDraining);
      queue.close();
      // At once, not through the engine thread: it may be stuck (mpirun sends SIGTERM when another rank died).
      in_flight.fail_all("the server is stopping (signal " + std::to_string(signal_number) + ")");
      stop_now.store(true);
      queue.wake();
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  // Whatever way this function leaves (an engine error included), the HTTP threads stop before the API and the
  // signal handlers they use are destroyed; clients of failed requests get a moment to receive their error.
  struct StopServerOnExit {
    frontend::HttpServer& server;
    LoadingGate& gate;
    ~StopServerOnExit() {
      server.stop(std::chrono::milliseconds(2000));
      gate.install(nullptr);
    }
  } stop_server_on_exit{server, gate};

  gate.install(&api);
  status.set_state(runtime::EngineState::kReady);
  const parallel::Topology& topo = replica.topology();
  const std::string kernel_path =
      o.backend == "cpu" ? "; cpu kernels " + kernels::cpu::describe_cpu_kernels() : std::string();
  const std::string kv_dtype = o.backend == "cpu" ? " " + o.kv_cache_dtype : std::string();
  std::printf("tessera: serving '%s' at %s://%s:%d/v1 (%d ranks, %s; KV cache%s %lld tokens in %d blocks "
              "of %d; max model len %d%s)\n",
              model.name.c_str(), server.scheme(), o.host.c_str(), server.port(), topo.world_size(),
              topo.layout().to_string().c_str(), kv_dtype.c_str(), static_cast<long long>(model.kv_blocks) * o.kv_block_size,
              replica.kv_blocks(), o.kv_block_size, model.max_model_len, kernel_path.c_str());
  std::fflush(stdout);

  try {
    replica.engine().serve(queue, status, &metrics, stop_now);
  } catch (const std::exception& e) {
    // Inside a step the followers may be blocked in its collectives: the watchdog ends the job, while the API is
    // still here to tell /health and the clients.
    if (replica.engine().in_step()) fail_in_step(replica, watchdog, e);
    throw;
  }

  status.set_state(runtime::EngineState::kStopped);
  signals.cancel();
  drain_deadline.cancel();
  server.stop();
  std::printf("tessera: server stopped\n");
  std::fflush(stdout);
  return 0;
}

int run_serve(const CLI::App& cmd, ServeOptions& o) {
  parallel::MpiSession mpi(nullptr, nullptr);
  const int rank = mpi.world_rank();
  if (rank != 0) {
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGUSR1, SIG_IGN);
  }
  std::signal(SIGPIPE, SIG_IGN);
  runtime::EngineStatus status;
  frontend::InFlightRequests in_flight;
  LoadingGate gate;
  std::unique_ptr<frontend::ServerMetrics> metrics;
  std::unique_ptr<Access> access;  // before the server: destroyed after its threads stopped
  std::unique_ptr<frontend::HttpServer> server;
  std::unique_ptr<RankSupervision> supervision;
  try {
    auto world = parallel::MpiCommunicator::world();
    parallel::ParallelLayout layout;
    parallel::run_collectively(*world, [&] {
      resolve_serve_options(cmd, o);
      configure_cpu_threads();
      apply_cpu_activations(o.cpu_activations);
      layout = runtime::resolve_pipeline_layout(o.model, o.tp, o.pp, o.pp_layers);  // --pp-layers, before any load
    });
    // Rank 0 listens before loading, so that /health says 503 (not "connection refused") while the model loads; a
    // port that cannot be bound fails every rank together.
    parallel::run_collectively(*world, [&] {
      if (rank != 0) return;
      metrics = std::make_unique<frontend::ServerMetrics>(o.served_model_name);
      access = make_access(o);
      gate.set_audit(access->audit.get());
      frontend::HttpLimits limits;
      limits.read_timeout = std::chrono::seconds(o.http_read_timeout_seconds);
      limits.idle_timeout = std::chrono::seconds(o.http_idle_timeout_seconds);
      limits.max_stream_backlog = o.max_stream_backlog_bytes;
      // The certificate and key are read here, on rank 0 only: a bad file fails every rank together.
      server = std::make_unique<frontend::HttpServer>(o.host, o.port, gate, limits, o.io_threads,
                                                      frontend::TlsFiles{o.tls_cert_file, o.tls_key_file});
      server->start([m = metrics.get()] { m->add_frontend_thread(static_cast<int>(::syscall(SYS_gettid))); });
    });
    supervision = std::make_unique<RankSupervision>(
        *world, layout, watchdog_options(o),
        [&](const std::string& message) {
          fail_serving(message, status, in_flight, watchdog_options(o).peer_timeout);
        });
    runtime::ReplicaOptions ro = replica_options(o, layout);
    ro.activity = &supervision->activity();
    auto replica = runtime::Replica::create(ro);
    std::unique_ptr<runtime::Tokenizer> tokenizer;
    parallel::run_collectively(replica->world(), [&] {
      if (rank == 0) tokenizer = runtime::load_model_tokenizer_if_any(o.model);
    });
    print_layout(*replica);
    parallel::RankWatchdog& watchdog = supervision->watchdog();
    if (rank != 0) return follow_leader(*replica, watchdog);
    return lead_replica(*replica, watchdog, [&] {
      return lead(*replica, o, *server, gate, status, *metrics, in_flight, watchdog, tokenizer.get(),
                  access->control);
    });
  } catch (const parallel::CollectiveFailure& e) {
    if (supervision) supervision->stop_after_collective_failure();
    if (server) server->stop(std::chrono::milliseconds(0));
    if (rank == 0) std::fprintf(stderr, "tessera: error: %s\n", e.what());
    return 1;
  } catch (...) {
    status.fail("the engine stopped on an error");
    if (server) server->stop(std::chrono::milliseconds(0));
    throw;
  }
}

}  // namespace

void add_serve_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("serve", "Serve the model over an OpenAI-compatible HTTP API (run under mpirun; "
                                          "rank 0 listens)");
  auto options = std::make_shared<ServeOptions>();
  add_serve_flags(*cmd, *options);
  cmd->callback([&action, cmd, options] { action = [cmd, options] { return run_serve(*cmd, *options); }; });
}

}  // namespace tessera::launcher
