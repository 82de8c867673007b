#include "launcher/generation_options.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>

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
          const std::string& file) {
  if (!node || !node[key] || cmd.count(flag) > 0) return;
  try {
    field = node[key].as<T>();
  } catch (const YAML::Exception& e) {
    fail("config ", file, ": '", key, "' has a bad value: ", e.what());
  }
}

}  // namespace

void add_generation_flags(CLI::App& cmd, GenerationOptions& o) {
  cmd.add_option("--config", o.config_file, "YAML configuration (configs/*.yaml); flags override its fields");
  cmd.add_option("--model", o.model, "Model: a .gguf file or a Hugging Face directory");
  cmd.add_option("--backend", o.backend, "Compute backend: cpu or cuda (when this build has it)");
  cmd.add_option("--tp", o.tp, "Tensor-parallel size");
  cmd.add_option("--pp", o.pp, "Pipeline-parallel size");
  cmd.add_option("--prompt", o.prompt, "Prompt text (the user message with --chat)");
  cmd.add_option("--prompt-ids", o.prompt_ids,
                 "Prompt as token ids (\"1 2 3\") instead of text; the only prompt a model without a tokenizer "
                 "(dummy:<preset>) takes, whose output is then printed as ids");
  cmd.add_option("--system", o.system_prompt, "System message (with --chat)");
  cmd.add_flag("--chat", o.chat, "Apply the model's chat template to the prompt");
  cmd.add_option("--chat-template", o.chat_template,
                 "Chat template family instead of the one detected from the model: chatml, llama3, llama2, mistral");
  cmd.add_option("--max-tokens", o.max_tokens, "Maximum number of new tokens");
  cmd.add_option("--temperature", o.temperature, "Sampling temperature (0: greedy)");
  cmd.add_option("--top-k", o.top_k, "Top-k filter (0: off)");
  cmd.add_option("--top-p", o.top_p, "Nucleus filter (1: off)");
  cmd.add_option("--min-p", o.min_p, "Min-p filter (0: off)");
  cmd.add_option("--seed", o.seed, "Sampling seed");
  cmd.add_option("--max-seq-len", o.max_sequence_length, "KV cache length per sequence (0: model's, at most 4096)");
  cmd.add_flag("--show-ids", o.show_ids, "Also print the generated token ids");
  cmd.add_option("--weight-dtype", o.weight_dtype,
                 "How the projection matrices are kept: native (default: the model file's own quantized blocks, the "
                 "same values as f32 in the fewest bytes; f32 where a matrix has no blocks), f32 (always dequantized), "
                 "or bf16 / q8_0 (repacked: fewer bytes than f32, not bit-faithful)");
  cmd.add_flag("--ignore-eos", o.ignore_eos, "Do not stop at end-of-generation tokens: always make --max-tokens");
}

void resolve_generation_options(const CLI::App& cmd, GenerationOptions& o) {
  if (!o.config_file.empty()) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(o.config_file);
    } catch (const YAML::Exception& e) {
      fail("cannot read config ", o.config_file, ": ", e.what());
    }
    TESSERA_CHECK(root.IsMap(), "config ", o.config_file, " is not a YAML mapping");
    take(root, "model", cmd, "--model", o.model, o.config_file);
    take(root, "backend", cmd, "--backend", o.backend, o.config_file);
    take(root, "chat_template", cmd, "--chat-template", o.chat_template, o.config_file);
    take(root, "weight_dtype", cmd, "--weight-dtype", o.weight_dtype, o.config_file);
    const YAML::Node parallel = root["parallel"];
    take(parallel, "tp", cmd, "--tp", o.tp, o.config_file);
    take(parallel, "pp", cmd, "--pp", o.pp, o.config_file);
    const YAML::Node gen = root["generation"];
    take(gen, "max_tokens", cmd, "--max-tokens", o.max_tokens, o.config_file);
    take(gen, "temperature", cmd, "--temperature", o.temperature, o.config_file);
    take(gen, "top_k", cmd, "--top-k", o.top_k, o.config_file);
    take(gen, "top_p", cmd, "--top-p", o.top_p, o.config_file);
    take(gen, "min_p", cmd, "--min-p", o.min_p, o.config_file);
    take(gen, "seed", cmd, "--seed", o.seed, o.config_file);
  }
  o.model = expand_home(o.model);
  TESSERA_CHECK(o.backend == "cpu" || o.backend == "cuda", "--backend must be cpu or cuda, got '", o.backend, "'");
  TESSERA_CHECK(o.prompt_ids.empty() || (o.prompt.empty() && !o.chat), "--prompt-ids replaces --prompt and --chat");
  TESSERA_CHECK(!o.model.empty(), "no model given: pass --model FILE or a --config that names one");
  TESSERA_CHECK(o.max_tokens >= 1, "--max-tokens must be >= 1, got ", o.max_tokens);
  TESSERA_CHECK(o.temperature >= 0.0f, "--temperature must be >= 0, got ", o.temperature);
  TESSERA_CHECK(o.top_p > 0.0f && o.top_p <= 1.0f, "--top-p must be in (0, 1], got ", o.top_p);
  TESSERA_CHECK(o.min_p >= 0.0f && o.min_p <= 1.0f, "--min-p must be in [0, 1], got ", o.min_p);
  TESSERA_CHECK(o.top_k >= 0, "--top-k must be >= 0, got ", o.top_k);
  kernels::cpu::parse_weight_format(o.weight_dtype);  // throws naming the accepted values
}

}  // namespace tessera::launcher
