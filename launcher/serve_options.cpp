#include "launcher/serve_options.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "kernels/base/error.h"
#include "kernels/cpu/packed_matrix.h"

namespace tessera::launcher {
namespace {

std::string expand_home(const std::string& path) {
  if (path.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    return std::string(home ? home : "") + path.substr(1);
  }
  return path;
}

template <class T>
void take(const YAML::Node& node, const char* key, const CLI::App& cmd, const char* flag, T& field,
          const std::string& file, const char* section) {
  if (!node || !node[key] || (flag && cmd.count(flag) > 0)) return;
  try {
    field = node[key].as<T>();
  } catch (const YAML::Exception& e) {
    fail("config ", file, ": '", section, key, "' has a bad value (", e.what(), ")");
  }
}

void only_keys(const YAML::Node& node, const std::set<std::string>& allowed, const std::string& file,
               const std::string& section) {
  if (!node) return;
  TESSERA_CHECK(node.IsMap(), "config ", file, ": '", section, "' must be a mapping");
  for (const auto& item : node) {
    const auto key = item.first.as<std::string>();
    if (allowed.count(key)) continue;
    std::string known;
    for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
    fail("config ", file, ": unknown key '", section.empty() ? "" : section + ".", key, "' (allowed: ", known, ")");
  }
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

void add_serve_flags(CLI::App& cmd, ServeOptions& o) {
  cmd.add_option("--config", o.config_file, "YAML configuration (configs/*.yaml); flags override its fields");
  cmd.add_option("--model", o.model, "Model: a .gguf file, a Hugging Face directory or dummy:<preset>");
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
    YAML::Node root;
    try {
      root = YAML::LoadFile(o.config_file);
    } catch (const YAML::Exception& e) {
      fail("cannot read config ", o.config_file, ": ", e.what());
    }
    const std::string& f = o.config_file;
    TESSERA_CHECK(root.IsMap(), "config ", f, " is not a YAML mapping");
    only_keys(root, {"model", "backend", "weight_dtype", "chat_template", "parallel", "generation", "server", "scheduler", "gpu"},
              f, "");
    take(root, "model", cmd, "--model", o.model, f, "");
    take(root, "backend", cmd, "--backend", o.backend, f, "");
    take(root, "weight_dtype", cmd, "--weight-dtype", o.weight_dtype, f, "");
    take(root, "chat_template", cmd, "--chat-template", o.chat_template, f, "");
    const YAML::Node parallel = root["parallel"];
    only_keys(parallel, {"tp", "pp"}, f, "parallel");
    take(parallel, "tp", cmd, "--tp", o.tp, f, "parallel.");
    take(parallel, "pp", cmd, "--pp", o.pp, f, "parallel.");
    const YAML::Node server = root["server"];
    only_keys(server, {"host", "port", "served_model_name", "max_queue", "io_threads", "drain_timeout"}, f, "server");
    take(server, "host", cmd, "--host", o.host, f, "server.");
    take(server, "port", cmd, "--port", o.port, f, "server.");
    take(server, "served_model_name", cmd, "--served-model-name", o.served_model_name, f, "server.");
    take(server, "max_queue", cmd, "--max-queue", o.max_queue, f, "server.");
    take(server, "io_threads", cmd, "--io-threads", o.io_threads, f, "server.");
    take(server, "drain_timeout", cmd, "--drain-timeout", o.drain_timeout_seconds, f, "server.");
    const YAML::Node scheduler = root["scheduler"];
    only_keys(scheduler,
              {"max_num_seqs", "max_num_batched_tokens", "max_model_len", "kv_block_size", "kv_cache_memory",
               "kv_cache_blocks", "kv_cache_memory_fraction", "prefix_caching"},
              f, "scheduler");
    take(scheduler, "max_num_seqs", cmd, "--max-num-seqs", o.max_num_seqs, f, "scheduler.");
    take(scheduler, "max_num_batched_tokens", cmd, "--max-num-batched-tokens", o.max_num_batched_tokens, f,
         "scheduler.");
    take(scheduler, "max_model_len", cmd, "--max-model-len", o.max_model_len, f, "scheduler.");
    take(scheduler, "kv_block_size", cmd, "--kv-block-size", o.kv_block_size, f, "scheduler.");
    take(scheduler, "kv_cache_memory", cmd, "--kv-cache-memory", o.kv_cache_memory, f, "scheduler.");
    take(scheduler, "kv_cache_blocks", cmd, "--kv-cache-blocks", o.kv_cache_blocks, f, "scheduler.");
    take(scheduler, "kv_cache_memory_fraction", cmd, "--kv-cache-memory-fraction", o.kv_cache_memory_fraction, f,
         "scheduler.");
    if (scheduler && scheduler["prefix_caching"] && cmd.count("--no-prefix-caching") == 0) {
      bool on = true;
      take(scheduler, "prefix_caching", cmd, nullptr, on, f, "scheduler.");
      o.no_prefix_caching = !on;
    }
  }
  o.model = expand_home(o.model);
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
  if (!o.kv_cache_memory.empty()) parse_byte_size(o.kv_cache_memory, "--kv-cache-memory");
  kernels::cpu::parse_weight_format(o.weight_dtype);
}

}  // namespace tessera::launcher
