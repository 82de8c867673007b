#include "launcher/generation_options.h"

#include <cstdlib>
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
              std::vector<std::string> choices = {}, std::optional<double> min = {}, std::optional<double> max = {}) {
  return make_config_key(std::move(name), kind, std::move(flag), std::move(help), std::move(choices), min, max);
}

}  // namespace

void declare_generation_config(ConfigSchema& s) {
  using K = ConfigValueKind;
  s.section("", "what to run and where");
  s.key("", key("model", K::kPath, "--model",
                "model: a .gguf file, a Hugging Face directory (config.json + safetensors) or dummy:<preset>"));
  s.key("", key("verify_sha256", K::kString, "--verify-sha256",
                "a sha256sum manifest (path) or one 64-hex SHA-256 that every rank checks the model files it maps "
                "against while it loads them"));
  s.key("", key("backend", K::kString, "--backend", "compute backend", {"cpu", "cuda"}));
  s.key("", key("weight_dtype", K::kString, "--weight-dtype",
                "how the projection matrices are kept in memory (native: the file's own blocks)",
                {"native", "f32", "bf16", "q8_0"}));
  s.key("", key("cpu_activations", K::kString, "--cpu-activations",
                "CPU backend: the quantized products' input, f32 (exact) or int8 (as llama.cpp: faster decode, lossy); "
                "unset: TESSERA_CPU_ACTIVATIONS, else f32",
                {"f32", "int8"}));
  s.key("", key("kv_cache_dtype", K::kString, "--kv-cache-dtype",
                "CPU backend: what the KV cache stores, f32 (exact) or f16 (twice the tokens, lossy)", {"f32", "f16"}));
  s.key("", key("chat_template", K::kString, "--chat-template",
                "chat template family instead of the one detected from the model", {"chatml", "llama3", "llama2",
                                                                                    "mistral"}));
  s.key("", key("max_seq_len", K::kInt, "--max-seq-len",
                "KV cache length per sequence in tokens (0: the model's context, at most 4096)", {}, 0));
  s.section("parallel", "the layout: world size = tp * pp ranks");
  s.key("parallel", key("tp", K::kInt, "--tp", "tensor-parallel size (divides the attention and KV heads)", {}, 1));
  s.key("parallel", key("pp", K::kInt, "--pp", "pipeline-parallel size (at most the number of layers)", {}, 1));
  s.key("parallel", key("pp_layers", K::kIntList, "--pp-layers",
                        "decoder layers per pipeline stage, first stage first: pp counts that sum to the model's "
                        "layers, or auto (balances the stages' decode cost, the LM head counted on the last stage); "
                        "absent: equal counts",
                        {"auto"}, 1));
  s.section("generation", "sampling defaults of generate (and of requests that do not set them)");
  s.key("generation", key("max_tokens", K::kInt, "--max-tokens", "maximum number of new tokens", {}, 1));
  s.key("generation", key("temperature", K::kFloat, "--temperature", "sampling temperature (0: greedy)", {}, 0));
  s.key("generation", key("top_k", K::kInt, "--top-k", "top-k filter (0: off)", {}, 0));
  ConfigKey top_p = key("top_p", K::kFloat, "--top-p", "nucleus filter (1: off)", {}, 0, 1);
  top_p.min_exclusive = true;
  s.key("generation", top_p);
  s.key("generation", key("min_p", K::kFloat, "--min-p", "min-p filter (0: off)", {}, 0, 1));
  ConfigKey seed = key("seed", K::kInt, "--seed", "sampling seed", {}, 0);
  seed.wide = true;
  s.key("generation", seed);
}

void add_generation_flags(CLI::App& cmd, GenerationOptions& o) {
  cmd.add_option("--config", o.config_file, "YAML configuration (configs/*.yaml); flags override its fields");
  cmd.add_option("--model", o.model, "Model: a .gguf file or a Hugging Face directory");
  cmd.add_option("--verify-sha256", o.verify_sha256,
                 "Check the model files against a sha256sum manifest (sha256sum *.safetensors > model.sha256) or one "
                 "64-hex hash (single-file models) while loading (hashed alongside the load); a mismatch ends the job");
  cmd.add_option("--backend", o.backend, "Compute backend: cpu or cuda (when this build has it)");
  cmd.add_option("--tp", o.tp, "Tensor-parallel size");
  cmd.add_option("--pp", o.pp, "Pipeline-parallel size");
  cmd.add_option("--pp-layers", o.pp_layers, kPpLayersHelp);
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
  add_pp_transfer_option(cmd, o.pp_transfer);
  add_cpu_activations_option(cmd, o.cpu_activations);
  add_kv_cache_dtype_option(cmd, o.kv_cache_dtype);
  cmd.add_option("--weight-dtype", o.weight_dtype,
                 "How the projection matrices are kept: native (default: the model file's own quantized blocks, the "
                 "same values as f32 in the fewest bytes; f32 where a matrix has no blocks), f32 (always dequantized), "
                 "or bf16 / q8_0 (repacked: fewer bytes than f32, not bit-faithful)");
  cmd.add_flag("--ignore-eos", o.ignore_eos, "Do not stop at end-of-generation tokens: always make --max-tokens");
}

void resolve_generation_options(const CLI::App& cmd, GenerationOptions& o) {
  if (!o.config_file.empty()) {
    const ConfigFile config = ConfigFile::load(o.config_file, config_schema());
    take_model_and_layout(config, cmd, o);
    take(config, "max_seq_len", cmd, "--max-seq-len", o.max_sequence_length);
    take(config, "kv_cache_dtype", cmd, "--kv-cache-dtype", o.kv_cache_dtype);
    take(config, "generation.max_tokens", cmd, "--max-tokens", o.max_tokens);
    take(config, "generation.temperature", cmd, "--temperature", o.temperature);
    take(config, "generation.top_k", cmd, "--top-k", o.top_k);
    take(config, "generation.top_p", cmd, "--top-p", o.top_p);
    take(config, "generation.min_p", cmd, "--min-p", o.min_p);
    take(config, "generation.seed", cmd, "--seed", o.seed);
  }
  o.model = expand_home(o.model);
  o.verify_sha256 = expand_home(o.verify_sha256);
  TESSERA_CHECK(o.backend == "cpu" || o.backend == "cuda", "--backend must be cpu or cuda, got '", o.backend, "'");
  TESSERA_CHECK(o.prompt_ids.empty() || (o.prompt.empty() && !o.chat), "--prompt-ids replaces --prompt and --chat");
  TESSERA_CHECK(!o.model.empty(), "no model given: pass --model FILE or a --config that names one");
  TESSERA_CHECK(o.max_tokens >= 1, "--max-tokens must be >= 1, got ", o.max_tokens);
  TESSERA_CHECK(o.temperature >= 0.0f, "--temperature must be >= 0, got ", o.temperature);
  TESSERA_CHECK(o.top_p > 0.0f && o.top_p <= 1.0f, "--top-p must be in (0, 1], got ", o.top_p);
  TESSERA_CHECK(o.min_p >= 0.0f && o.min_p <= 1.0f, "--min-p must be in [0, 1], got ", o.min_p);
  TESSERA_CHECK(o.top_k >= 0, "--top-k must be >= 0, got ", o.top_k);
  kernels::cpu::parse_weight_format(o.weight_dtype);  // throws naming the accepted values
  kernels::cpu::parse_kv_dtype(o.kv_cache_dtype);
  runtime::parse_pipeline_layers(o.pp_layers, o.pp);   // the counts against the model: resolve_pipeline_layout
}

}  // namespace tessera::launcher
