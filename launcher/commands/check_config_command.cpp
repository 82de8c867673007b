// `tessera check-config FILE...`: reads each YAML config strictly against the schema every command shares
// (config_sections.h) and prints its settings, without starting MPI or opening the model. A typo, an unknown
// section or a bad value is an error naming the key, the file and the allowed values; exit 1 at the first one.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "launcher/commands/commands.h"
#include "launcher/config_sections.h"

namespace tessera::launcher {
namespace {

// Every key the schema knows, one per line: "section.key<TAB>allowed values<TAB>help".
int print_keys() {
  for (const auto& section : config_schema().sections()) {
    for (const auto& key : section.keys) {
      const std::string name = section.name.empty() ? key.name : section.name + "." + key.name;
      std::printf("%s\t%s\t%s\n", name.c_str(), key.allowed().c_str(), key.help.c_str());
    }
  }
  return 0;
}

int run_check_config(const std::vector<std::string>& files, bool keys) {
  if (keys) return print_keys();
  TESSERA_CHECK(!files.empty(), "check-config: give one or more config files (or --keys)");
  const ConfigSchema& schema = config_schema();
  for (const std::string& file : files) {
    const ConfigFile config = ConfigFile::load(file, schema);
    std::printf("%s: ok\n", file.c_str());
    for (const auto& section : schema.sections()) {
      for (const auto& key : section.keys) {
        const std::string name = section.name.empty() ? key.name : section.name + "." + key.name;
        if (auto value = config.text(name)) std::printf("  %-32s %s\n", name.c_str(), value->c_str());
      }
    }
  }
  return 0;
}

}  // namespace

void add_check_config_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("check-config",
                                 "Check YAML configs against the keys Tessera knows (no MPI, no model loaded)");
  auto files = std::make_shared<std::vector<std::string>>();
  auto keys = std::make_shared<bool>(false);
  cmd->add_option("files", *files, "Config files (configs/*.yaml)");
  cmd->add_flag("--keys", *keys, "List every key a config may hold, with its allowed values");
  cmd->callback([&action, files, keys] { action = [files, keys] { return run_check_config(*files, *keys); }; });
}

}  // namespace tessera::launcher
