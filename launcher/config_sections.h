#pragma once
// The one schema of Tessera's YAML configs: every section any command reads, so that a config written for
// `tessera serve` also works for `tessera generate` and `tessera plan` (each reads the sections it needs; none
// tolerates a key nobody declared). configs/README.md documents exactly these keys (a test checks that).
#include "launcher/config_schema.h"

namespace tessera::launcher {

// Built once, on first use, from each command's declaration function.
const ConfigSchema& config_schema();

// Declaration functions, one per options file. A new command adds its own here and in config_sections.cpp.
void declare_generation_config(ConfigSchema& schema);  // generation_options.cpp: model, parallel:, generation:
void declare_plan_config(ConfigSchema& schema);        // plan_config.cpp: cluster:, plan:
void declare_serve_config(ConfigSchema& schema);       // serve_options.cpp: server:, scheduler:

}  // namespace tessera::launcher
