#pragma once
// Options of `tessera generate`, from a YAML config file (configs/*.yaml) overridden by command-line flags.
#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace tessera::launcher {

struct GenerationOptions {
  std::string config_file;
  std::string model;
  std::string verify_sha256;  // a sha256sum manifest or a 64-hex hash (runtime/model/model_integrity.h)
  std::string backend = "cpu";
  int tp = 1;
  int pp = 1;
  // --pp-layers: "" (balanced), "auto" or "19,11" (runtime/model/pipeline_partition.h); checked here, applied to the
  // model by runtime::resolve_pipeline_layout.
  std::string pp_layers;
  std::string prompt;
  std::string prompt_ids;  // token ids instead of text: bypasses the tokenizer (models without one: dummy:<preset>)
  std::string system_prompt;
  bool chat = false;
  std::string chat_template;  // family override: chatml, llama3, llama2, mistral
  int max_tokens = 64;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  unsigned long long seed = 0;
  int max_sequence_length = 0;
  bool show_ids = false;
  bool ignore_eos = false;  // keep generating past end-of-generation tokens (benchmarks)
  std::string weight_dtype = "native";  // native | f32 | bf16 | q8_0: how the projection matrices are kept in memory
  std::string pp_transfer = "auto";     // auto | full | sliced: how hidden states cross pipeline stages
  std::string cpu_activations;          // f32 | int8; empty: TESSERA_CPU_ACTIVATIONS, else f32
  std::string kv_cache_dtype = "f32";   // f32 | f16: what the CPU backend's KV cache stores
};

// Registers the flags on `cmd`, writing into `options`.
void add_generation_flags(CLI::App& cmd, GenerationOptions& options);
// Fills the fields that the command line left unset from options.config_file (if any), then validates.
// Throws tessera::Error naming the file and key on a bad config.
void resolve_generation_options(const CLI::App& cmd, GenerationOptions& options);

}  // namespace tessera::launcher
