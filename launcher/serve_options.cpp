#include "launcher/serve_options.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/packed_matrix.h"
#include "launcher/config_overrides.h"
#include "launcher/config_sections.h"
#include "runtime/model/pipeline_partition.h"

namespace tessera::launcher {
namespace {

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
  ConfigKey peer_timeout = key("peer_timeout", K::kFloat, "--peer-timeout",
                               "seconds without a heartbeat after which a rank counts as failed and the job ends", 0);
  peer_timeout.min_exclusive = true;
  s.key("server", peer_timeout);
  s.key("server", key("step_timeout", K::kFloat, "--step-timeout",
                      "seconds one engine step may run before the job ends (0: no limit)", 0));
  s.key("server", key("tls_cert_file", K::kPath, "--tls-cert-file",
                      "PEM certificate (optionally followed by its chain): HTTPS, with tls_key_file"));
  s.key("server", key("tls_key_file", K::kPath, "--tls-key-file",
                      "PEM private key of the certificate (unencrypted): HTTPS, with tls_cert_file"));
  s.key("server", key("http_read_timeout", K::kInt, "--http-read-timeout",
                      "seconds to receive a whole request once its first byte came (and a TLS handshake); then 408",
                      1, 3600));
  s.key("server", key("http_idle_timeout", K::kInt, "--http-idle-timeout",
                      "seconds a connection may wait without a request, or a client read nothing of a response", 1,
                      86400));
  s.key("server", key("max_stream_backlog", K::kString, "--max-stream-backlog",
                      "unread bytes of a streamed response before its client is cut off and its request cancelled, "
                      "e.g. 4MiB"));
  s.key("server", key("max_messages", K::kInt, "--max-messages", "messages in one chat request; more: 400", 1));
  s.key("server", key("max_n", K::kInt, "--max-n", "choices per prompt (n); more: 400", 1, 64));
  s.key("server", key("api_key_file", K::kPath, "--api-key-file",
                      "file of API keys, one per line: [NAME] KEY [rpm=N] [tpm=N] (absent: no key needed)"));
  s.key("server", key("public_health_and_metrics", K::kBool, "--no-public-health-and-metrics",
                      "with an API key file, /health and /metrics still answer without a key"));
  s.key("server", key("rate_limit_rpm", K::kInt, "--rate-limit-rpm",
                      "generation requests per minute per key (without keys: for all clients together; 0: no limit)",
                      0));
  s.key("server", key("rate_limit_tpm", K::kInt, "--rate-limit-tpm",
                      "tokens per minute per key, charged at admission as prompt + max_tokens per choice (0: no limit)",
                      0));
  s.key("server", key("audit_log", K::kPath, "--audit-log",
                      "file to append one JSON line per request to (- : stderr; absent: no audit log)"));
  s.key("server", key("audit_log_content", K::kBool, "--audit-log-content",
                      "write prompts and completions into the audit log"));
  s.section("scheduler", "tessera serve: batching and the KV cache");
  s.key("scheduler", key("max_num_seqs", K::kInt, "--max-num-seqs", "sequences in the running batch", 1));
  s.key("scheduler", key("max_num_batched_tokens", K::kInt, "--max-num-batched-tokens",
                         "tokens per engine step (decode tokens + prefill chunks)", 1));
  s.key("scheduler", key("max_model_len", K::kInt, "--max-model-len",
                         "prompt + completion tokens per request (0: the model's context)", 0));
  s.key("scheduler", key("kv_block_size", K::kInt, "--kv-block-size", "tokens per KV cache block", 1, 1024));
  s.key("scheduler", make_config_key("kv_cache_dtype", K::kString, "--kv-cache-dtype",
                                     "CPU backend: what the KV cache stores, f32 (exact) or f16 (twice the tokens, lossy)",
                                     {"f32", "f16"}, {}, {}));
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
  s.key("scheduler", key("micro_batches", K::kInt, "--micro-batches",
                         "pipeline micro-batches in flight (0: pp, so every stage works; 1: one step at a time)", 0,
                         255));
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
  cmd.add_option("--pp-layers", o.pp_layers, kPpLayersHelp);
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
  cmd.add_option("--peer-timeout", o.peer_timeout_seconds,
                 "Seconds without a heartbeat from a rank (stopped, hung, cut off) before the job ends (default 5)");
  cmd.add_option("--step-timeout", o.step_timeout_seconds,
                 "Seconds one engine step may run before the job ends (default 60; 0: no limit)");
  cmd.add_option("--tls-cert-file", o.tls_cert_file,
                 "HTTPS: PEM certificate, optionally followed by its chain (with --tls-key-file)");
  cmd.add_option("--tls-key-file", o.tls_key_file, "HTTPS: PEM private key, unencrypted (with --tls-cert-file)");
  cmd.add_option("--http-read-timeout", o.http_read_timeout_seconds,
                 "Seconds to receive a whole request once its first byte came, and a TLS handshake (default 30)");
  cmd.add_option("--http-idle-timeout", o.http_idle_timeout_seconds,
                 "Seconds a connection may wait without a request, or a client read nothing of a response "
                 "(default 120)");
  cmd.add_option("--max-stream-backlog", o.max_stream_backlog,
                 "Unread bytes of a streamed response before its client is cut off (default 4MiB)");
  cmd.add_option("--max-messages", o.max_messages, "Messages in one chat request (default 1024)");
  cmd.add_option("--max-n", o.max_n, "Choices per prompt, n (default 16, at most 64)");
  cmd.add_option("--api-key-file", o.api_key_file,
                 "API keys, one per line: [NAME] KEY [rpm=N] [tpm=N]; then /v1/*, /tokenize and /detokenize need "
                 "'Authorization: Bearer KEY' (default: no key needed)");
  cmd.add_flag("--no-public-health-and-metrics", o.no_public_health_and_metrics,
               "With --api-key-file, /health and /metrics need a key too (default: they answer without one)");
  cmd.add_option("--rate-limit-rpm", o.rate_limit_rpm,
                 "Generation requests per minute per key, unless its line says rpm=N (without keys: for all clients "
                 "together); 429 with Retry-After beyond (default 0: no limit)");
  cmd.add_option("--rate-limit-tpm", o.rate_limit_tpm,
                 "Tokens per minute per key, unless its line says tpm=N: prompt + max_tokens per choice, charged at "
                 "admission (default 0: no limit)");
  cmd.add_option("--audit-log", o.audit_log, "Append one JSON line per request to FILE (- : stderr)");
  cmd.add_flag("--audit-log-content", o.audit_log_content, "Write prompts and completions into the audit log too");
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
  add_pp_transfer_option(cmd, o.pp_transfer);
  add_cpu_activations_option(cmd, o.cpu_activations);
  add_kv_cache_dtype_option(cmd, o.kv_cache_dtype);
  cmd.add_option("--micro-batches", o.micro_batches,
                 "Plans in flight through the pipeline (default 0: pp, so that every stage works; 1: one step at a "
                 "time)");
}

void resolve_serve_options(const CLI::App& cmd, ServeOptions& o) {
  if (!o.config_file.empty()) {
    const ConfigFile config = ConfigFile::load(o.config_file, config_schema());
    take_model_and_layout(config, cmd, o);
    take(config, "server.host", cmd, "--host", o.host);
    take(config, "server.port", cmd, "--port", o.port);
    take(config, "server.served_model_name", cmd, "--served-model-name", o.served_model_name);
    take(config, "server.max_queue", cmd, "--max-queue", o.max_queue);
    take(config, "server.io_threads", cmd, "--io-threads", o.io_threads);
    take(config, "server.drain_timeout", cmd, "--drain-timeout", o.drain_timeout_seconds);
    take(config, "server.peer_timeout", cmd, "--peer-timeout", o.peer_timeout_seconds);
    take(config, "server.step_timeout", cmd, "--step-timeout", o.step_timeout_seconds);
    take(config, "server.tls_cert_file", cmd, "--tls-cert-file", o.tls_cert_file);
    take(config, "server.tls_key_file", cmd, "--tls-key-file", o.tls_key_file);
    take(config, "server.http_read_timeout", cmd, "--http-read-timeout", o.http_read_timeout_seconds);
    take(config, "server.http_idle_timeout", cmd, "--http-idle-timeout", o.http_idle_timeout_seconds);
    take(config, "server.max_stream_backlog", cmd, "--max-stream-backlog", o.max_stream_backlog);
    take(config, "server.max_messages", cmd, "--max-messages", o.max_messages);
    take(config, "server.max_n", cmd, "--max-n", o.max_n);
    take(config, "server.api_key_file", cmd, "--api-key-file", o.api_key_file);
    bool public_health = !o.no_public_health_and_metrics;
    take(config, "server.public_health_and_metrics", cmd, "--no-public-health-and-metrics", public_health);
    o.no_public_health_and_metrics = !public_health;
    take(config, "server.rate_limit_rpm", cmd, "--rate-limit-rpm", o.rate_limit_rpm);
    take(config, "server.rate_limit_tpm", cmd, "--rate-limit-tpm", o.rate_limit_tpm);
    take(config, "server.audit_log", cmd, "--audit-log", o.audit_log);
    take(config, "server.audit_log_content", cmd, "--audit-log-content", o.audit_log_content);
    take(config, "scheduler.max_num_seqs", cmd, "--max-num-seqs", o.max_num_seqs);
    take(config, "scheduler.max_num_batched_tokens", cmd, "--max-num-batched-tokens", o.max_num_batched_tokens);
    take(config, "scheduler.max_model_len", cmd, "--max-model-len", o.max_model_len);
    take(config, "scheduler.kv_block_size", cmd, "--kv-block-size", o.kv_block_size);
    take(config, "scheduler.kv_cache_dtype", cmd, "--kv-cache-dtype", o.kv_cache_dtype);
    take(config, "scheduler.kv_cache_memory", cmd, "--kv-cache-memory", o.kv_cache_memory);
    take(config, "scheduler.kv_cache_blocks", cmd, "--kv-cache-blocks", o.kv_cache_blocks);
    take(config, "scheduler.kv_cache_memory_fraction", cmd, "--kv-cache-memory-fraction", o.kv_cache_memory_fraction);
    bool prefix_caching = !o.no_prefix_caching;
    take(config, "scheduler.prefix_caching", cmd, "--no-prefix-caching", prefix_caching);
    o.no_prefix_caching = !prefix_caching;
    take(config, "scheduler.micro_batches", cmd, "--micro-batches", o.micro_batches);
  }
  o.model = expand_home(o.model);
  o.api_key_file = expand_home(o.api_key_file);
  if (o.audit_log != "-") o.audit_log = expand_home(o.audit_log);
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
  TESSERA_CHECK(o.peer_timeout_seconds > 0 && o.peer_timeout_seconds <= 3600,
                "--peer-timeout must be in (0, 3600] seconds, got ", o.peer_timeout_seconds);
  TESSERA_CHECK(o.step_timeout_seconds >= 0 && o.step_timeout_seconds <= 86400,
                "--step-timeout must be in [0, 86400] seconds, got ", o.step_timeout_seconds);
  o.tls_cert_file = expand_home(o.tls_cert_file);
  o.tls_key_file = expand_home(o.tls_key_file);
  TESSERA_CHECK(o.tls_cert_file.empty() == o.tls_key_file.empty(),
                "--tls-cert-file and --tls-key-file go together: give both (HTTPS) or neither (plain HTTP); got only ",
                o.tls_cert_file.empty() ? "--tls-key-file" : "--tls-cert-file");
  TESSERA_CHECK(o.http_read_timeout_seconds >= 1 && o.http_read_timeout_seconds <= 3600,
                "--http-read-timeout must be in [1, 3600] seconds, got ", o.http_read_timeout_seconds);
  TESSERA_CHECK(o.http_idle_timeout_seconds >= 1 && o.http_idle_timeout_seconds <= 86400,
                "--http-idle-timeout must be in [1, 86400] seconds, got ", o.http_idle_timeout_seconds);
  o.max_stream_backlog_bytes = parse_byte_size(o.max_stream_backlog, "--max-stream-backlog");
  TESSERA_CHECK(o.max_stream_backlog_bytes >= 4096, "--max-stream-backlog must be at least 4KiB, got '",
                o.max_stream_backlog, "'");
  TESSERA_CHECK(o.max_messages >= 1, "--max-messages must be >= 1, got ", o.max_messages);
  TESSERA_CHECK(o.max_n >= 1 && o.max_n <= 64, "--max-n must be in [1, 64], got ", o.max_n);
  TESSERA_CHECK(o.rate_limit_rpm >= 0, "--rate-limit-rpm must be >= 0 (0: no limit), got ", o.rate_limit_rpm);
  TESSERA_CHECK(o.rate_limit_tpm >= 0, "--rate-limit-tpm must be >= 0 (0: no limit), got ", o.rate_limit_tpm);
  TESSERA_CHECK(!o.audit_log_content || !o.audit_log.empty(), "--audit-log-content needs --audit-log FILE");
  TESSERA_CHECK(!o.no_public_health_and_metrics || !o.api_key_file.empty(),
                "--no-public-health-and-metrics needs --api-key-file (without keys nothing needs one)");
  TESSERA_CHECK(o.max_num_seqs >= 1, "--max-num-seqs must be >= 1, got ", o.max_num_seqs);
  TESSERA_CHECK(o.micro_batches >= 0 && o.micro_batches <= 255, "--micro-batches must be in [0, 255], got ",
                o.micro_batches);
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
  kernels::cpu::parse_kv_dtype(o.kv_cache_dtype);  // a config file's value is checked here too
  runtime::parse_pipeline_layers(o.pp_layers, o.pp);  // the counts against the model: resolve_pipeline_layout
}

}  // namespace tessera::launcher
