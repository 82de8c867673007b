#pragma once
// The keys a Tessera YAML config may hold, and the strict reading of a config against them. Each command's
// options file declares the sections and keys it reads (generation_options.cpp: the model, `parallel:` and
// `generation:`; serve_options.cpp: `server:` and `scheduler:`), all into one schema (config_sections.cpp), so
// that one config file can serve several commands. Anything the schema does not name is an error naming the key,
// the file and what is allowed: a typo like `tensor_paralel` is never silently ignored.
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::launcher {

// kIntList: a YAML list of integers within the key's bounds ([19, 11]), or one of its choices as a single word
// (`auto`); its flag takes the same as text ("19,11", "auto": ConfigFile::text).
enum class ConfigValueKind { kString, kPath, kInt, kFloat, kBool, kIntList };

// One key: its kind and what values it takes (choices for strings, an inclusive range for numbers).
struct ConfigKey {
  std::string name;
  ConfigValueKind kind = ConfigValueKind::kString;
  std::string help;                  // one line, also what configs/README.md documents
  std::vector<std::string> choices;  // strings: the only values allowed (empty: any); int lists: words allowed instead
  std::optional<double> min;         // numbers (and each number of an int list): inclusive bounds
  std::optional<double> max;
  bool min_exclusive = false;  // the minimum itself is not allowed: (min, max]
  bool wide = false;  // kInt: read into a 64-bit field (seeds, block counts); otherwise into an int
  std::string flag;  // the command-line flag that overrides it, for messages ("--tp"); may be empty

  // What a valid value looks like, for error messages and the README ("an integer >= 1", "one of cpu, cuda").
  std::string allowed() const;
};

// A key with its kind, flag and help, and optionally its choices and bounds (what every declaration writes).
ConfigKey make_config_key(std::string name, ConfigValueKind kind, std::string flag, std::string help,
                          std::vector<std::string> choices = {}, std::optional<double> min = {},
                          std::optional<double> max = {});

class ConfigSchema {
 public:
  // Declares a section ("" is the top level) and its description; adding keys to it again is fine.
  ConfigSchema& section(const std::string& name, const std::string& help = "");
  // Declares a key of `section`; a key declared twice is a programming error (throws).
  ConfigSchema& key(const std::string& section, ConfigKey key);

  // Checks every entry of `root` (the whole parsed file): unknown sections and keys, wrong kinds, values out
  // of range or not among the choices. Throws tessera::Error: "config FILE: KEY: PROBLEM; allowed: ...".
  void validate(const YAML::Node& root, const std::string& file) const;

  struct Section {
    std::string name;
    std::string help;
    std::vector<ConfigKey> keys;
  };
  const std::vector<Section>& sections() const { return sections_; }
  const ConfigKey* find(const std::string& section, const std::string& key) const;

 private:
  Section* find_section(const std::string& name);
  const Section* find_section(const std::string& name) const;
  std::vector<Section> sections_;
};

// A config file read and validated against a schema. Values are addressed "key" (top level) or "section.key".
class ConfigFile {
 public:
  // Reads and validates; throws tessera::Error naming the file on a YAML syntax error or a schema violation.
  static ConfigFile load(const std::string& file, const ConfigSchema& schema);

  const std::string& file() const { return file_; }
  bool has(const std::string& dotted) const;
  // The value converted to T; nullopt when absent. The schema already checked the kind, so this only fails on
  // a programming error (a getter of the wrong type).
  template <class T>
  std::optional<T> get(const std::string& dotted) const {
    const YAML::Node node = lookup(dotted);
    if (!node) return std::nullopt;
    return node.as<T>();
  }
  // The value as its flag would take it: a scalar as written, a list joined with commas ("19,11"); nullopt when
  // absent. Any key (check-config prints them all this way).
  std::optional<std::string> text(const std::string& dotted) const;

 private:
  YAML::Node lookup(const std::string& dotted) const;
  std::string file_;
  YAML::Node root_;
};

// "~/x" -> "$HOME/x" (configs name paths that way); any other path unchanged.
std::string expand_home(const std::string& path);

}  // namespace tessera::launcher
