// `tessera generate`: one prompt through a multi-rank replica. Every rank runs this command under mpirun; rank 0
// tokenizes, drives the engine and streams the text; the others follow the leader's step plans.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "launcher/commands/commands.h"
#include "launcher/config_overrides.h"
#include "launcher/cpu_threads.h"
#include "launcher/replica_roles.h"
#include "launcher/generation_options.h"
#include "launcher/layout_report.h"
#include "launcher/prompt_builder.h"
#include "parallel/collective_failure.h"
#include "parallel/mpi/mpi_communicator.h"
#include "parallel/mpi/mpi_session.h"
#include "runtime/engine/replica.h"
#include "runtime/model/model_source.h"
#include "runtime/model/model_tokenizer.h"
#include "runtime/model/pipeline_partition.h"

namespace tessera::launcher {
namespace {

// Without a tokenizer (dummy weights) the output is streamed as ids and generation stops at the config's
// end-of-generation ids.
int run_leader(runtime::Replica& replica, const runtime::Tokenizer* tokenizer, const std::vector<int32_t>& prompt,
               const GenerationOptions& o) {
  runtime::GenerationRequest request;
  request.prompt = prompt;
  request.max_new_tokens = o.max_tokens;
  request.sampling = {o.temperature, o.top_k, o.top_p, o.min_p, o.seed};
  if (!o.ignore_eos) {
    request.stop_ids = tokenizer ? tokenizer->end_of_generation_ids() : replica.config().eos_token_ids;
  }
  std::optional<runtime::IncrementalDetokenizer> detokenizer;
  if (tokenizer) detokenizer.emplace(*tokenizer, /*skip_special=*/true, /*sequence_start=*/false);
  std::printf("--- prompt: %zu tokens; generating up to %d ---\n", prompt.size(), o.max_tokens);
  std::fflush(stdout);
  request.on_token = [&](const runtime::TokenEvent& event) {
    const int32_t id = event.token;
    const std::string text = detokenizer ? detokenizer->push(id) : " " + std::to_string(id);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  const runtime::GenerationResult result = replica.engine().generate(std::move(request));
  const std::string tail = detokenizer ? detokenizer->flush() : std::string();
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  const size_t decoded = result.tokens.size() > 0 ? result.tokens.size() - 1 : 0;
  std::printf("\n--- %zu tokens, finish reason: %s ---\n", result.tokens.size(), result.finish_reason.c_str());
  std::printf("prefill: %zu tokens in %.3f s (%.1f tokens/s); decode: %zu tokens in %.3f s (%.1f tokens/s)\n",
              prompt.size(), result.prefill_seconds, static_cast<double>(prompt.size()) / result.prefill_seconds,
              decoded, result.decode_seconds,
              result.decode_seconds > 0 ? static_cast<double>(decoded) / result.decode_seconds : 0.0);
  if (o.show_ids) {
    std::printf("ids:");
    for (int32_t id : result.tokens) std::printf(" %d", id);
    std::printf("\n");
  }
  return 0;
}

int run_generate(const CLI::App& cmd, GenerationOptions& o) {
  parallel::MpiSession mpi(nullptr, nullptr);
  const int rank = mpi.world_rank();
  std::unique_ptr<RankSupervision> supervision;
  try {
    auto world = parallel::MpiCommunicator::world();
    parallel::ParallelLayout layout;
    parallel::run_collectively(*world, [&] {
      resolve_generation_options(cmd, o);
      configure_cpu_threads();
      apply_cpu_activations(o.cpu_activations);
      layout = runtime::resolve_pipeline_layout(o.model, o.tp, o.pp, o.pp_layers);  // --pp-layers, before any load
    });
    supervision = std::make_unique<RankSupervision>(*world, layout, batch_watchdog_options());
    runtime::ReplicaOptions replica_options;
    replica_options.activity = &supervision->activity();
    replica_options.model = o.model;
    replica_options.verify_sha256 = o.verify_sha256;
    replica_options.kv_cache.ranks_on_node = local_ranks();
    replica_options.layout = layout;
    replica_options.max_sequence_length = o.max_sequence_length;
    replica_options.weight_format = kernels::cpu::parse_weight_format(o.weight_dtype);
    replica_options.kv_dtype = kernels::cpu::parse_kv_dtype(o.kv_cache_dtype);
    replica_options.pipeline_transfer = o.pp_transfer;
    replica_options.backend = o.backend;
    auto replica = runtime::Replica::create(replica_options);

    std::unique_ptr<runtime::Tokenizer> tokenizer;
    std::vector<int32_t> prompt;
    parallel::run_collectively(replica->world(), [&] {
      if (rank != 0) return;
      tokenizer = runtime::load_model_tokenizer_if_any(o.model);
      if (!o.prompt_ids.empty()) {
        prompt = parse_prompt_ids(o.prompt_ids, replica->config().vocab_size);
      } else {
        TESSERA_CHECK(tokenizer != nullptr, o.model, " has no tokenizer: give the prompt as --prompt-ids \"1 2 3\"");
        prompt = build_prompt(*tokenizer, o);
      }
      TESSERA_CHECK(static_cast<int64_t>(prompt.size()) + o.max_tokens <= replica->max_sequence_length(), "prompt of ",
                    prompt.size(), " tokens plus --max-tokens ", o.max_tokens, " exceeds the maximum sequence length ",
                    replica->max_sequence_length(), " (raise --max-seq-len)");
    });
    print_layout(*replica);
    if (rank != 0) return follow_leader(*replica, supervision->watchdog());
    return lead_replica(*replica, supervision->watchdog(),
                        [&] { return run_leader(*replica, tokenizer.get(), prompt, o); });
  } catch (const parallel::CollectiveFailure& e) {
    if (supervision) supervision->stop_after_collective_failure();
    if (rank == 0) std::fprintf(stderr, "tessera: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace

void add_generate_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("generate", "Generate text from one prompt on a multi-rank replica (run under mpirun)");
  auto options = std::make_shared<GenerationOptions>();
  add_generation_flags(*cmd, *options);
  cmd->callback([&action, cmd, options] { action = [cmd, options] { return run_generate(*cmd, *options); }; });
}

}  // namespace tessera::launcher
