#include <cstdio>

#include "launcher/commands/commands.h"

namespace tessera::launcher {

void add_version_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("version", "Print the Tessera version");
  cmd->callback([&action] {
    action = [] {
      std::printf("tessera 0.1.0\n");
      return 0;
    };
  });
}

}  // namespace tessera::launcher
