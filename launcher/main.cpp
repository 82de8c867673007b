// The `tessera` command: parses the command line and runs one subcommand. Errors from the libraries arrive
// here as tessera::Error and leave as one message on stderr with a non-zero exit code.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "kernels/base/error.h"
#include "launcher/backends/backends.h"
#include "launcher/commands/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"Tessera: serve large language models across GPUs and nodes", "tessera"};
  app.require_subcommand(1);
  tessera::launcher::CommandAction action;
  tessera::launcher::add_version_command(app, action);
  tessera::launcher::add_generate_command(app, action);
  tessera::launcher::add_inspect_command(app, action);
  tessera::launcher::add_bench_command(app, action);
  tessera::launcher::add_serve_command(app, action);
  tessera::launcher::add_check_config_command(app, action);
  tessera::launcher::add_plan_command(app, action);
  tessera::launcher::add_doctor_command(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    tessera::launcher::register_backends();
    return action ? action() : 0;
  } catch (const tessera::Error& e) {
    std::fprintf(stderr, "tessera: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera: internal error: %s\n", e.what());
    return 70;
  }
}
