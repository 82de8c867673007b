#pragma once
// How a command's options combine its config file with its flags: a config value fills a field unless the field's
// flag was given on the command line (flags win). Shared by every options file that reads a config.
#include <CLI/CLI.hpp>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/packed_matrix.h"
#include "launcher/config_schema.h"

namespace tessera::launcher {

// The help of --pp-layers, which every command that takes a layout has (generate, serve, bench, plan, inspect).
inline constexpr const char* kPpLayersHelp =
    "Decoder layers per pipeline stage, first stage first: --pp counts >= 1 that sum to the model's layers (e.g. "
    "19,11), or auto: balance the stages' decode cost, counting the LM head on the last stage (default: equal "
    "counts)";

// --pp-transfer, which every command that runs a replica has (generate, serve, bench): how hidden states cross
// pipeline stages (runtime::ReplicaOptions::pipeline_transfer).
inline void add_pp_transfer_option(CLI::App& cmd, std::string& pp_transfer) {
  cmd.add_option("--pp-transfer", pp_transfer,
                 "How hidden states cross stages: auto (default: 1/tp row slices all-gathered by the next stage when "
                 "a stage boundary crosses hosts), full or sliced")
      ->check(CLI::IsMember({"auto", "full", "sliced"}));
}

// --cpu-activations, which every command that runs a replica has (generate, serve, bench): how the CPU backend's
// quantized matrix products take their input (kernels::cpu::ActivationFormat). Empty: TESSERA_CPU_ACTIVATIONS, else
// f32.
inline void add_cpu_activations_option(CLI::App& cmd, std::string& cpu_activations) {
  cmd.add_option("--cpu-activations", cpu_activations,
                 "CPU backend: how the quantized matrix products take their input: f32 (the default, exact) or int8 "
                 "(quantized per 32 values with integer dot products, as llama.cpp does: faster decode, lossy; "
                 "Q4_0 / Q4_1 / Q8_0 matrices on AVX2 and up). Default: TESSERA_CPU_ACTIVATIONS, else f32")
      ->check(CLI::IsMember({"f32", "int8"}));
}

// --kv-cache-dtype, which every command that runs a replica has (generate, serve, bench): what the CPU backend's KV
// cache stores (kernels::cpu::KvDtype).
inline constexpr const char* kKvCacheDtypeHelp =
    "CPU backend: what the KV cache stores: f32 (the default, exact) or f16 (half the bytes per token, so twice the "
    "tokens in the same memory; K and V rounded to f16 when written, lossy). The CUDA backend keeps bf16";
inline void add_kv_cache_dtype_option(CLI::App& cmd, std::string& kv_cache_dtype) {
  cmd.add_option("--kv-cache-dtype", kv_cache_dtype, kKvCacheDtypeHelp)->check(CLI::IsMember({"f32", "f16"}));
}

// Applies a --cpu-activations value to this process (every rank parses the same command line, so all ranks agree);
// empty leaves the environment's choice.
inline void apply_cpu_activations(const std::string& cpu_activations) {
  if (cpu_activations.empty()) return;
  kernels::cpu::set_activation_format(kernels::cpu::parse_activation_format(cpu_activations.c_str()));
}

template <class T>
void take(const ConfigFile& config, const char* name, const CLI::App& cmd, const char* flag, T& field) {
  if (flag && cmd.count(flag) > 0) return;
  if (auto value = config.get<T>(name)) field = *value;
}

// A key whose flag takes text but whose YAML value may be a list (ConfigValueKind::kIntList): [19, 11] -> "19,11".
inline void take_text(const ConfigFile& config, const char* name, const CLI::App& cmd, const char* flag,
                      std::string& field) {
  if (flag && cmd.count(flag) > 0) return;
  if (auto value = config.text(name)) field = *value;
}

// The keys of the model and its layout, which every command that runs a replica reads alike (generate, serve):
// `model`, `verify_sha256`, `backend`, `weight_dtype`, `cpu_activations`, `chat_template`, `parallel.tp`,
// `parallel.pp`, `parallel.pp_layers` (into o.pp_layers as --pp-layers text).
template <class Options>
void take_model_and_layout(const ConfigFile& config, const CLI::App& cmd, Options& o) {
  take(config, "model", cmd, "--model", o.model);
  take(config, "verify_sha256", cmd, "--verify-sha256", o.verify_sha256);
  take(config, "backend", cmd, "--backend", o.backend);
  take(config, "weight_dtype", cmd, "--weight-dtype", o.weight_dtype);
  take(config, "cpu_activations", cmd, "--cpu-activations", o.cpu_activations);
  take(config, "chat_template", cmd, "--chat-template", o.chat_template);
  take(config, "parallel.tp", cmd, "--tp", o.tp);
  take(config, "parallel.pp", cmd, "--pp", o.pp);
  take_text(config, "parallel.pp_layers", cmd, "--pp-layers", o.pp_layers);
}

}  // namespace tessera::launcher
