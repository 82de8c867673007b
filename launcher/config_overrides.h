#pragma once
// How a command's options combine its config file with its flags: a config value fills a field unless the field's
// flag was given on the command line (flags win). Shared by every options file that reads a config.
#include <CLI/CLI.hpp>

#include "launcher/config_schema.h"

namespace tessera::launcher {

template <class T>
void take(const ConfigFile& config, const char* name, const CLI::App& cmd, const char* flag, T& field) {
  if (flag && cmd.count(flag) > 0) return;
  if (auto value = config.get<T>(name)) field = *value;
}

// The keys of the model and its layout, which every command that runs a replica reads alike (generate, serve):
// `model`, `verify_sha256`, `backend`, `weight_dtype`, `chat_template`, `parallel.tp`, `parallel.pp`.
template <class Options>
void take_model_and_layout(const ConfigFile& config, const CLI::App& cmd, Options& o) {
  take(config, "model", cmd, "--model", o.model);
  take(config, "verify_sha256", cmd, "--verify-sha256", o.verify_sha256);
  take(config, "backend", cmd, "--backend", o.backend);
  take(config, "weight_dtype", cmd, "--weight-dtype", o.weight_dtype);
  take(config, "chat_template", cmd, "--chat-template", o.chat_template);
  take(config, "parallel.tp", cmd, "--tp", o.tp);
  take(config, "parallel.pp", cmd, "--pp", o.pp);
}

}  // namespace tessera::launcher
