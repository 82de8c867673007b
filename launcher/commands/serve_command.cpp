// `tessera serve`: the model as an OpenAI-compatible HTTP server. Every rank runs this command under mpirun; rank 0
// listens, owns the scheduler and drives the engine; the others follow its step plans.
//
// Rank 0's threads: the main thread is the engine thread (the only one that calls MPI); the HTTP I/O threads
// (runtime/frontend/http_server.h) parse, validate, tokenize and write responses, and reach the engine only
// through the RequestQueue. Signals: SIGUSR1 drains (no new requests, in-flight ones finish up to --drain-timeout,
// then every rank exits 0); SIGINT/SIGTERM stop now (in-flight requests end with an error). Followers ignore
// them: the leader's shutdown plan ends them, so no rank leaves alone.
#include <unistd.h>
#include <sys/syscall.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>

#include "kernels/base/error.h"
#include "launcher/commands/commands.h"
#include "launcher/cpu_threads.h"
#include "launcher/layout_report.h"
#include "launcher/replica_roles.h"
#include "launcher/serve_options.h"
#include "parallel/collective_failure.h"
#include "parallel/mpi/mpi_communicator.h"
#include "parallel/mpi/mpi_session.h"
#include "runtime/engine/replica.h"
#include "runtime/frontend/api_error.h"
#include "runtime/frontend/http_server.h"
#include "runtime/frontend/openai_api.h"
#include "runtime/frontend/server_metrics.h"
#include "runtime/model/model_tokenizer.h"

namespace tessera::launcher {
namespace {

// Answers 503 until the API is installed (the model is still loading), then hands every request to it.
class LoadingGate final : public frontend::HttpHandler {
 public:
  void install(frontend::HttpHandler* api) { api_.store(api); }
  void handle(frontend::HttpRequest request, std::shared_ptr<frontend::Exchange> exchange) override {
    if (frontend::HttpHandler* api = api_.load()) return api->handle(std::move(request), std::move(exchange));
    exchange->respond(503, "application/json",
                      frontend::ApiError(503, "the model is still loading", "service_unavailable").body(),
                      {{"Retry-After", "5"}});
  }

 private:
  std::atomic<frontend::HttpHandler*> api_{nullptr};
};

runtime::ReplicaOptions replica_options(const ServeOptions& o) {
  runtime::ReplicaOptions r;
  r.model = o.model;
  r.verify_sha256 = o.verify_sha256;
  r.layout = {o.tp, o.pp};
  r.backend = o.backend;
  r.weight_format = kernels::cpu::parse_weight_format(o.weight_dtype);
  r.block_size = o.kv_block_size;
  r.max_sequence_length = o.max_model_len > 0 ? o.max_model_len : -1;
  r.max_sequences = o.max_num_seqs;
  r.max_step_tokens = o.max_num_batched_tokens;
  r.prefix_caching = !o.no_prefix_caching;
  r.kv_cache.blocks = o.kv_cache_blocks;
  r.kv_cache.memory_bytes = o.kv_cache_memory_bytes;
  r.kv_cache.memory_fraction = o.kv_cache_memory_fraction;
  r.kv_cache.ranks_on_node = local_ranks();
  return r;
}

int lead(runtime::Replica& replica, const ServeOptions& o, frontend::HttpServer& server, LoadingGate& gate,
         runtime::EngineStatus& status, frontend::ServerMetrics& metrics, const runtime::Tokenizer* tokenizer) {
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
  frontend::OpenAiApi api(model, queue, status, metrics, frontend::ApiOptions{});
  std::atomic<bool> stop_now{false};

  auto& io = server.io_context();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM, SIGUSR1);
  boost::asio::steady_timer drain_deadline(io);
  std::function<void(const boost::system::error_code&, int)> on_signal;
  on_signal = [&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    if (signal_number == SIGUSR1 && status.state() == runtime::EngineState::kReady) {
      std::fprintf(stderr, "tessera: draining: no new requests; in-flight ones get up to %d s\n",
                   o.drain_timeout_seconds);
      status.set_state(runtime::EngineState::kDraining);
      queue.close();
      drain_deadline.expires_after(std::chrono::seconds(o.drain_timeout_seconds));
      drain_deadline.async_wait([&](const boost::system::error_code& timer_ec) {
        if (timer_ec) return;
        std::fprintf(stderr, "tessera: drain timeout: ending the requests still in flight\n");
        stop_now.store(true);
        queue.wake();
      });
    } else if (signal_number != SIGUSR1) {
      std::fprintf(stderr, "tessera: signal %d: stopping now\n", signal_number);
      status.set_state(runtime::EngineState::kDraining);
      queue.close();
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
  std::printf("tessera: serving '%s' at http://%s:%d/v1 (%d ranks, tp=%d pp=%d; KV cache %lld tokens in %d blocks "
              "of %d; max model len %d)\n",
              model.name.c_str(), o.host.c_str(), server.port(), topo.world_size(), topo.tp(), topo.pp(),
              static_cast<long long>(model.kv_blocks) * o.kv_block_size, replica.kv_blocks(), o.kv_block_size,
              model.max_model_len);
  std::fflush(stdout);

  replica.engine().serve(queue, status, &metrics, stop_now);

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
  LoadingGate gate;
  std::unique_ptr<frontend::ServerMetrics> metrics;
  std::unique_ptr<frontend::HttpServer> server;
  try {
    auto world = parallel::MpiCommunicator::world();
    parallel::run_collectively(*world, [&] {
      resolve_serve_options(cmd, o);
      configure_cpu_threads();
    });
    // Rank 0 listens before loading, so that /health says 503 (not "connection refused") while the model loads; a
    // port that cannot be bound fails every rank together.
    parallel::run_collectively(*world, [&] {
      if (rank != 0) return;
      metrics = std::make_unique<frontend::ServerMetrics>(o.served_model_name);
      server = std::make_unique<frontend::HttpServer>(o.host, o.port, gate, frontend::HttpLimits{}, o.io_threads);
      server->start([m = metrics.get()] { m->add_frontend_thread(static_cast<int>(::syscall(SYS_gettid))); });
    });
    auto replica = runtime::Replica::create(replica_options(o));
    std::unique_ptr<runtime::Tokenizer> tokenizer;
    parallel::run_collectively(replica->world(), [&] {
      if (rank == 0) tokenizer = runtime::load_model_tokenizer_if_any(o.model);
    });
    print_layout(*replica);
    if (rank != 0) return follow_leader(*replica);
    return lead_replica(*replica, [&] {
      return lead(*replica, o, *server, gate, status, *metrics, tokenizer.get());
    });
  } catch (const parallel::CollectiveFailure& e) {
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
