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
  std::string weight_dtype = "native";
  std::string chat_template;  // family override
  // server:
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string served_model_name;  // empty: the model file's name without .gguf (or the directory's name)
  int max_queue = 256;            // requests waiting for admission before 429
  int io_threads = 2;
  int drain_timeout_seconds = 30;
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
};

void add_serve_flags(CLI::App& cmd, ServeOptions& options);
// Fills what the command line left unset from the config file, then validates; throws tessera::Error.
void resolve_serve_options(const CLI::App& cmd, ServeOptions& options);
// "2GiB", "512MiB", "1.5GB", "123456" -> bytes; throws tessera::Error naming the value.
uint64_t parse_byte_size(const std::string& text, const std::string& what);

}  // namespace tessera::launcher
