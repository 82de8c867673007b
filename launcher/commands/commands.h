#pragma once
// Each subcommand of `tessera` lives in its own file and registers itself on the CLI app. The registered
// action runs after parsing; it returns the process exit code and may throw tessera::Error, which main()
// prints as one message.
#include <CLI/CLI.hpp>

#include <functional>

namespace tessera::launcher {

using CommandAction = std::function<int()>;

// Each adder creates its subcommand and, when that subcommand is chosen, stores its action in `action`.
void add_version_command(CLI::App& app, CommandAction& action);
void add_generate_command(CLI::App& app, CommandAction& action);
void add_inspect_command(CLI::App& app, CommandAction& action);
void add_bench_command(CLI::App& app, CommandAction& action);
void add_serve_command(CLI::App& app, CommandAction& action);
void add_check_config_command(CLI::App& app, CommandAction& action);
void add_plan_command(CLI::App& app, CommandAction& action);
void add_doctor_command(CLI::App& app, CommandAction& action);

}  // namespace tessera::launcher
