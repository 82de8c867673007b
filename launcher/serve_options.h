#pragma once
// Options of `tessera serve`: the model and layout (as for generate), the HTTP server (`server:` in YAML) and the
// scheduler and KV cache (`scheduler:`), from a config file overridden by flags. Every key is documented in
// configs/README.md; unknown keys in these sections and bad values are errors naming the key and the file.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace tessera::launcher {

struct ServeOptions {
  std::string config_file;
  std::string model;
  std::string verify_sha256;  // a sha256sum manifest or a 64-hex hash (runtime/model/model_integrity.h)
  std::string backend = "cpu";
  int tp = 1;
  int pp = 1;
  std::string pp_layers;  // --pp-layers, as for generate: "", "auto" or "19,11"
  std::string weight_dtype = "native";
  std::string kv_cache_dtype = "f32";  // --kv-cache-dtype f32 | f16 (CPU backend)
  std::string chat_template;  // family override
  // server:
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string served_model_name;  // empty: the model file's name without .gguf (or the directory's name)
  int max_queue = 256;            // requests waiting for admission before 429
  int io_threads = 2;
  int drain_timeout_seconds = 30;
  double peer_timeout_seconds = 5;   // the rank watchdog (parallel/rank_watchdog.h)
  double step_timeout_seconds = 60;  // 0: no limit
  std::string tls_cert_file;      // PEM certificate (and chain); with tls_key_file: HTTPS
  std::string tls_key_file;       // PEM private key, unencrypted
  int http_read_timeout_seconds = 30;   // a whole request (or a TLS handshake) once its first byte came
  int http_idle_timeout_seconds = 120;  // a connection without a request; a response the client does not read
  std::string max_stream_backlog = "4MiB";  // unread bytes of a stream before its client is cut off
  uint64_t max_stream_backlog_bytes = 0;    // parsed by resolve_serve_options
  int max_messages = 1024;        // messages in one chat request
  int max_n = 16;                 // choices per prompt (n)
  // server: access control, rate limits, audit log (runtime/frontend/api_keys.h, rate_limiter.h, audit_log.h)
  std::string api_key_file;            // empty: no key needed
  bool no_public_health_and_metrics = false;  // with keys: /health and /metrics need one too
  int64_t rate_limit_rpm = 0;          // requests per minute per key (or for everyone without keys); 0: none
  int64_t rate_limit_tpm = 0;          // tokens per minute, likewise
  std::string audit_log;               // a file to append to, "-" for stderr; empty: none
  bool audit_log_content = false;      // prompts and completions in the audit log
  // scheduler:
  int max_num_seqs = 64;
  int max_num_batched_tokens = 512;
  int max_model_len = 0;          // 0: the model's context length
  int kv_block_size = 16;
  std::string kv_cache_memory;    // "2GiB", "512MiB", bytes; empty: a fraction of the available memory
  uint64_t kv_cache_memory_bytes = 0;  // kv_cache_memory parsed by resolve_serve_options (0: unset)
  int64_t kv_cache_blocks = 0;
  double kv_cache_memory_fraction = 0.1;  // of the memory left after the weights (CPU: of the node, per rank share)
  bool no_prefix_caching = false;
  int micro_batches = 0;  // 0: pp
  std::string pp_transfer = "auto";
  std::string cpu_activations;  // --cpu-activations f32 | int8; empty: TESSERA_CPU_ACTIVATIONS, else f32
};

void add_serve_flags(CLI::App& cmd, ServeOptions& options);
// Fills what the command line left unset from the config file, then validates; throws tessera::Error.
void resolve_serve_options(const CLI::App& cmd, ServeOptions& options);
// "2GiB", "512MiB", "1.5GB", "123456" -> bytes; throws tessera::Error naming the value.
uint64_t parse_byte_size(const std::string& text, const std::string& what);

}  // namespace tessera::launcher
