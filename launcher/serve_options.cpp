#include "launcher/serve_options.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/packed_matrix.h"
#include "launcher/config_sections.h"

namespace tessera::launcher {
namespace {

// A config value fills a field unless its flag was given on the command line.
template <class T>
void take(const ConfigFile& config, const char* name, const CLI::App& cmd, const char* flag, T& field) {
  if (flag && cmd.count(flag) > 0) return;
  if (auto value = config.get<T>(name)) field = *value;
}

ConfigKey key(std::string name, ConfigValueKind kind, std::string flag, std::string help,
              std::optional<double> min = {}, std::optional<double> max = {}) {
  return make_config_key(std::move(name), kind, std::move(flag), std::move(help), {}, min, max);
}

}  // namespace

uint64_t parse_byte_size(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  TESSERA_CHECK(end != text.c_str() && std::isfinite(value) && value > 0, what, " '", text,
                "' is not a size (e.g. 2GiB, 512MiB, 1073741824)");
  const std::string unit(end);
  double scale = 1;
  if (unit == "" || unit == "B") scale = 1;
  else if (unit == "KiB" || unit == "K") scale = 1024.0;
  else if (unit == "MiB" || unit == "M") scale = 1024.0 * 1024;
  else if (unit == "GiB" || unit == "G") scale = 1024.0 * 1024 * 1024;
  else if (unit == "KB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else fail(what, " '", text, "' has an unknown unit '", unit, "' (B, KiB, MiB, GiB, KB, MB, GB)");
  return static_cast<uint64_t>(value * scale);
}

void declare_serve_config(ConfigSchema& s) {
  using K = ConfigValueKind;
  s.section("server", "tessera serve: the HTTP server on rank 0");
  s.key("server", key("host", K::kString, "--host", "address rank 0 listens on (127.0.0.1: this machine only)"));
  s.key("server", key("port", K::kInt, "--port", "port rank 0 listens on (0: any free port, printed when ready)", 0,
                      65535));
  s.key("server", key("served_model_name", K::kString, "--served-model-name",
                      "the API's model id (default: the model file's name without .gguf)"));
  s.key("server", key("max_queue", K::kInt, "--max-queue",
                      "requests that may wait for admission; beyond them 429 with Retry-After", 1));
  s.key("server", key("io_threads", K::kInt, "--io-threads", "HTTP I/O threads on rank 0", 1, 64));
  s.key("server", key("drain_timeout", K::kInt, "--drain-timeout",
                      "seconds a drain (SIGUSR1) lets in-flight requests finish", 0));
  s.section("scheduler", "tessera serve: batching and the KV cache");
  s.key("scheduler", key("max_num_seqs", K::kInt, "--max-num-seqs", "sequences in the running batch", 1));
  s.key("scheduler", key("max_num_batched_tokens", K::kInt, "--max-num-batched-tokens",
                         "tokens per engine step (decode tokens + prefill chunks)", 1));
  s.key("scheduler", key("max_model_len", K::kInt, "--max-model-len",
                         "prompt + completion tokens per request (0: the model's context)", 0));
  s.key("scheduler", key("kv_block_size", K::kInt, "--kv-block-size", "tokens per KV cache block", 1, 1024));
  s.key("scheduler", key("kv_cache_memory", K::kString, "--kv-cache-memory",
                         "KV cache bytes per rank, e.g. 2GiB or 512MiB (wins over the fraction)"));
  ConfigKey blocks = key("kv_cache_blocks", K::kInt, "--kv-cache-blocks",
                         "KV cache size in blocks (wins over memory and fraction; 0: unset)", 0);
  blocks.wide = true;  // an int64_t
  s.key("scheduler", blocks);
  ConfigKey fraction = key("kv_cache_memory_fraction", K::kFloat, "--kv-cache-memory-fraction",
                           "share of the memory left after the weights for the KV cache (CPU: of the node's "
                           "available memory, split among its ranks)", 0, 1);
  fraction.min_exclusive = true;
  s.key("scheduler", fraction);
  s.key("scheduler", key("prefix_caching", K::kBool, "--no-prefix-caching",
                         "reuse the KV blocks of shared prompt prefixes"));
}

void add_serve_flags(CLI::App& cmd, ServeOptions& o) {
  cmd.add_option("--config", o.config_file, "YAML configuration (configs/*.yaml); flags override its fields");
  cmd.add_option("--model", o.model, "Model: a .gguf file, a Hugging Face directory or dummy:<preset>");
  cmd.add_option("--verify-sha256", o.verify_sha256,
                 "Check the model files against a sha256sum manifest (sha256sum *.safetensors > model.sha256) or one "
                 "64-hex hash (single-file models) while loading (hashed alongside the load); a mismatch ends the job");
  cmd.add_option("--backend", o.backend, "Compute backend: cpu or cuda (when this build has it)");
  cmd.add_option("--tp", o.tp, "Tensor-parallel size");
  cmd.add_option("--pp", o.pp, "Pipeline-parallel size");
  cmd.add_option("--weight-dtype", o.weight_dtype, "CPU weights: native (default), f32, bf16 or q8_0");
  cmd.add_option("--chat-template", o.chat_template, "Chat template family instead of the model's: chatml, llama3, "
                                                     "llama2, mistral");
  cmd.add_option("--host", o.host, "Address rank 0 listens on (default 127.0.0.1: this machine only)");
  cmd.add_option("--port", o.port, "Port rank 0 listens on (default 8000; 0 picks a free one)");
  cmd.add_option("--served-model-name", o.served_model_name, "The model id of the API (default: the model's name)");
  cmd.add_option("--max-queue", o.max_queue, "Requests that may wait for admission; beyond them: 429 (default 256)");
  cmd.add_option("--io-threads", o.io_threads, "HTTP I/O threads on rank 0 (default 2)");
  cmd.add_option("--drain-timeout", o.drain_timeout_seconds,
                 "Seconds a drain (SIGUSR1) lets in-flight requests finish before they are ended (default 30)");
  cmd.add_option("--max-num-seqs", o.max_num_seqs, "Sequences in the running batch (default 64)");
  cmd.add_option("--max-num-batched-tokens", o.max_num_batched_tokens,
                 "Tokens per engine step: decode tokens plus prefill chunks (default 512)");
  cmd.add_option("--max-model-len", o.max_model_len, "Prompt + completion tokens per request (default: the model's)");
  cmd.add_option("--kv-block-size", o.kv_block_size, "Tokens per KV cache block (default 16)");
  cmd.add_option("--kv-cache-memory", o.kv_cache_memory, "KV cache bytes per rank, e.g. 2GiB (overrides the fraction)");
  cmd.add_option("--kv-cache-blocks", o.kv_cache_blocks, "KV cache size in blocks (overrides memory and fraction)");
  cmd.add_option("--kv-cache-memory-fraction", o.kv_cache_memory_fraction,
                 "Share of the memory left after the weights for the KV cache (default 0.1; CPU: of the node's "
                 "available memory, split among its ranks)");
  cmd.add_flag("--no-prefix-caching", o.no_prefix_caching, "Do not reuse the KV blocks of shared prompt prefixes");
}

void resolve_serve_options(const CLI::App& cmd, ServeOptions& o) {
  if (!o.config_file.empty()) {
    const ConfigFile config = ConfigFile::load(o.config_file, config_schema());
    take(config, "model", cmd, "--model", o.model);
    take(config, "verify_sha256", cmd, "--verify-sha256", o.verify_sha256);
    take(config, "backend", cmd, "--backend", o.backend);
    take(config, "weight_dtype", cmd, "--weight-dtype", o.weight_dtype);
    take(config, "chat_template", cmd, "--chat-template", o.chat_template);
    take(config, "parallel.tp", cmd, "--tp", o.tp);
    take(config, "parallel.pp", cmd, "--pp", o.pp);
    take(config, "server.host", cmd, "--host", o.host);
    take(config, "server.port", cmd, "--port", o.port);
    take(config, "server.served_model_name", cmd, "--served-model-name", o.served_model_name);
    take(config, "server.max_queue", cmd, "--max-queue", o.max_queue);
    take(config, "server.io_threads", cmd, "--io-threads", o.io_threads);
    take(config, "server.drain_timeout", cmd, "--drain-timeout", o.drain_timeout_seconds);
    take(config, "scheduler.max_num_seqs", cmd, "--max-num-seqs", o.max_num_seqs);
    take(config, "scheduler.max_num_batched_tokens", cmd, "--max-num-batched-tokens", o.max_num_batched_tokens);
    take(config, "scheduler.max_model_len", cmd, "--max-model-len", o.max_model_len);
    take(config, "scheduler.kv_block_size", cmd, "--kv-block-size", o.kv_block_size);
    take(config, "scheduler.kv_cache_memory", cmd, "--kv-cache-memory", o.kv_cache_memory);
    take(config, "scheduler.kv_cache_blocks", cmd, "--kv-cache-blocks", o.kv_cache_blocks);
    take(config, "scheduler.kv_cache_memory_fraction", cmd, "--kv-cache-memory-fraction", o.kv_cache_memory_fraction);
    bool prefix_caching = !o.no_prefix_caching;
    take(config, "scheduler.prefix_caching", cmd, "--no-prefix-caching", prefix_caching);
    o.no_prefix_caching = !prefix_caching;
  }
  o.model = expand_home(o.model);
  o.verify_sha256 = expand_home(o.verify_sha256);
  TESSERA_CHECK(!o.model.empty(), "no model given: pass --model FILE or a --config that names one");
  if (o.served_model_name.empty()) {
    // As clients know the model: the file's name without .gguf, a directory's name, or dummy:<preset>.
    std::filesystem::path path(o.model);
    while (!path.empty() && !path.has_filename()) path = path.parent_path();
    o.served_model_name = path.extension() == ".gguf" ? path.stem().string() : path.filename().string();
  }
  TESSERA_CHECK(o.backend == "cpu" || o.backend == "cuda", "--backend must be cpu or cuda, got '", o.backend, "'");
  TESSERA_CHECK(o.port >= 0 && o.port <= 65535, "--port must be in [0, 65535], got ", o.port);
  TESSERA_CHECK(o.max_queue >= 1, "--max-queue must be >= 1, got ", o.max_queue);
  TESSERA_CHECK(o.io_threads >= 1 && o.io_threads <= 64, "--io-threads must be in [1, 64], got ", o.io_threads);
  TESSERA_CHECK(o.drain_timeout_seconds >= 0, "--drain-timeout must be >= 0, got ", o.drain_timeout_seconds);
  TESSERA_CHECK(o.max_num_seqs >= 1, "--max-num-seqs must be >= 1, got ", o.max_num_seqs);
  TESSERA_CHECK(o.max_num_batched_tokens >= o.max_num_seqs, "--max-num-batched-tokens (", o.max_num_batched_tokens,
                ") must be at least --max-num-seqs (", o.max_num_seqs, ")");
  TESSERA_CHECK(o.max_model_len >= 0, "--max-model-len must be >= 0, got ", o.max_model_len);
  TESSERA_CHECK(o.kv_block_size >= 1 && o.kv_block_size <= 1024, "--kv-block-size must be in [1, 1024], got ",
                o.kv_block_size);
  TESSERA_CHECK(o.kv_cache_blocks >= 0, "--kv-cache-blocks must be >= 0, got ", o.kv_cache_blocks);
  TESSERA_CHECK(o.kv_cache_memory_fraction > 0 && o.kv_cache_memory_fraction <= 1,
                "--kv-cache-memory-fraction must be in (0, 1], got ", o.kv_cache_memory_fraction);
  o.kv_cache_memory_bytes = o.kv_cache_memory.empty() ? 0 : parse_byte_size(o.kv_cache_memory, "--kv-cache-memory");
  kernels::cpu::parse_weight_format(o.weight_dtype);
}

}  // namespace tessera::launcher
