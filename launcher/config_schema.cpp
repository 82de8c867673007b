#include "launcher/config_schema.h"

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <limits>

#include "kernels/base/error.h"

namespace tessera::launcher {

ConfigKey make_config_key(std::string name, ConfigValueKind kind, std::string flag, std::string help,
                          std::vector<std::string> choices, std::optional<double> min, std::optional<double> max) {
  ConfigKey k;
  k.name = std::move(name);
  k.kind = kind;
  k.flag = std::move(flag);
  k.help = std::move(help);
  k.choices = std::move(choices);
  k.min = min;
  k.max = max;
  return k;
}
namespace {

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string dotted(const std::string& section, const std::string& key) {
  return section.empty() ? key : section + "." + key;
}

// The scalar as written in the file, for messages.
std::string written(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  return "nothing";
}

}  // namespace

std::string ConfigKey::allowed() const {
  std::string range;
  const char* open = min_exclusive ? " in (" : " in [";
  if (min && max) range = open + number_text(*min) + ", " + number_text(*max) + "]";
  else if (min) range = (min_exclusive ? " > " : " >= ") + number_text(*min);
  else if (max) range = " <= " + number_text(*max);
  switch (kind) {
    case ConfigValueKind::kString:
      return choices.empty() ? "a string" : "one of " + join(choices);
    case ConfigValueKind::kPath: return "a path (~/ is your home)";
    case ConfigValueKind::kInt: return "an integer" + range;
    case ConfigValueKind::kFloat: return "a number" + range;
    case ConfigValueKind::kBool: return "true or false";
    case ConfigValueKind::kIntList:
      return "a list of integers" + range + (choices.empty() ? "" : ", or " + join(choices));
  }
  return "";
}

ConfigSchema& ConfigSchema::section(const std::string& name, const std::string& help) {
  if (Section* s = find_section(name)) {
    if (s->help.empty()) s->help = help;
    return *this;
  }
  sections_.push_back({name, help, {}});
  return *this;
}

ConfigSchema& ConfigSchema::key(const std::string& section_name, ConfigKey key) {
  section(section_name);
  Section* s = find_section(section_name);
  TESSERA_CHECK(find(section_name, key.name) == nullptr, "config schema: key '", dotted(section_name, key.name),
                "' declared twice");
  TESSERA_CHECK(find_section(key.name) == nullptr || !section_name.empty(), "config schema: top-level key '",
                key.name, "' clashes with a section");
  s->keys.push_back(std::move(key));
  return *this;
}

ConfigSchema::Section* ConfigSchema::find_section(const std::string& name) {
  for (auto& s : sections_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}
const ConfigSchema::Section* ConfigSchema::find_section(const std::string& name) const {
  for (const auto& s : sections_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const ConfigKey* ConfigSchema::find(const std::string& section_name, const std::string& key) const {
  const Section* s = find_section(section_name);
  if (!s) return nullptr;
  for (const auto& k : s->keys) {
    if (k.name == key) return &k;
  }
  return nullptr;
}

namespace {

void check_value(const ConfigKey& k, const YAML::Node& node, const std::string& where, const std::string& file) {
  auto bad = [&](const std::string& problem) {
    fail("config ", file, ": '", where, "' ", problem, "; allowed: ", k.allowed());
  };
  if (k.kind == ConfigValueKind::kIntList) {
    if (node.IsScalar()) {  // a word instead of the list (`auto`), unquoted or quoted
      for (const auto& c : k.choices) {
        if (c == node.Scalar()) return;
      }
    }
    if (!node.IsSequence()) bad("must be a list such as [19, 11], got " + written(node));
    if (node.size() == 0) bad("is an empty list");
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node element = node[i];
      if (!element.IsScalar()) bad("has " + written(element) + " as item " + std::to_string(i + 1));
      long long v = 0;
      if (element.Tag() == "!" || !YAML::convert<long long>::decode(element, v)) {
        bad("has " + written(element) + " as item " + std::to_string(i + 1) + ", not an integer");
      }
      const auto d = static_cast<double>(v);
      if (v > std::numeric_limits<int>::max() || v < std::numeric_limits<int>::min() || (k.min && d < *k.min) ||
          (k.max && d > *k.max)) {
        bad("has " + written(element) + " as item " + std::to_string(i + 1) + ", out of range");
      }
    }
    return;
  }
  if (!node.IsScalar()) bad("must be a single value, got " + written(node));
  const std::string text = node.Scalar();
  if (node.Tag() == "!" && k.kind != ConfigValueKind::kString && k.kind != ConfigValueKind::kPath) {
    bad("is a quoted string " + written(node));  // "3" in quotes is not the number 3
  }
  switch (k.kind) {
    case ConfigValueKind::kString:
      if (!k.choices.empty()) {
        bool found = false;
        for (const auto& c : k.choices) found = found || c == text;
        if (!found) bad("has the value " + written(node));
      }
      return;
    case ConfigValueKind::kPath:
      if (text.empty()) bad("is empty");
      return;
    case ConfigValueKind::kBool: {
      bool b = false;
      if (!YAML::convert<bool>::decode(node, b)) bad("is not a boolean: " + written(node));
      return;
    }
    case ConfigValueKind::kIntList: return;  // handled above
    case ConfigValueKind::kInt:
    case ConfigValueKind::kFloat: {
      double v = 0;
      if (k.kind == ConfigValueKind::kInt) {
        long long i = 0;
        if (!YAML::convert<long long>::decode(node, i)) bad("is not an integer: " + written(node));
        // The option it fills is an int unless declared wide: a larger value would fail to convert later, far from
        // the key (tests/fuzz/fuzz_config.cpp found `tp: 3000000000` passing here).
        if (!k.wide && (i > std::numeric_limits<int>::max() || i < std::numeric_limits<int>::min())) {
          bad("is out of range: " + written(node));
        }
        v = static_cast<double>(i);
      } else if (!YAML::convert<double>::decode(node, v) || !std::isfinite(v)) {
        bad("is not a number: " + written(node));
      }
      const bool below = k.min && (k.min_exclusive ? v <= *k.min : v < *k.min);
      if (below || (k.max && v > *k.max)) bad("is out of range: " + written(node));
      return;
    }
  }
}

std::vector<std::string> key_names(const ConfigSchema::Section& s) {
  std::vector<std::string> names;
  for (const auto& k : s.keys) names.push_back(k.name);
  return names;
}

}  // namespace

void ConfigSchema::validate(const YAML::Node& root, const std::string& file) const {
  TESSERA_CHECK(root.IsMap(), "config ", file, " is not a YAML mapping of keys and sections");
  const Section* top = find_section("");
  std::vector<std::string> top_allowed = top ? key_names(*top) : std::vector<std::string>{};
  for (const auto& s : sections_) {
    if (!s.name.empty()) top_allowed.push_back(s.name + ":");
  }
  // Keys are plain names: a sequence or mapping as a key (`? [a, b]`) is an error here, not a conversion failure.
  auto key_name = [&](const YAML::Node& key, const std::string& where) {
    if (!key.IsScalar()) fail("config ", file, ": ", where, "a key must be a plain name, got ", written(key));
    return key.Scalar();
  };
  for (const auto& entry : root) {
    const std::string name = key_name(entry.first, "");
    const YAML::Node& value = entry.second;
    if (const ConfigKey* k = find("", name)) {
      check_value(*k, value, name, file);
      continue;
    }
    const Section* s = name.empty() ? nullptr : find_section(name);
    if (!s) fail("config ", file, ": unknown key '", name, "'; allowed at the top level: ", join(top_allowed));
    if (value.IsNull()) continue;  // an empty section
    TESSERA_CHECK(value.IsMap(), "config ", file, ": '", name, "' must be a section (a mapping of keys), got ",
                  written(value), "; its keys: ", join(key_names(*s)));
    for (const auto& inner : value) {
      const std::string key = key_name(inner.first, "in '" + name + "': ");
      const ConfigKey* k = find(name, key);
      if (!k) {
        fail("config ", file, ": unknown key '", dotted(name, key), "'; allowed in '", name, "': ",
             join(key_names(*s)));
      }
      check_value(*k, inner.second, dotted(name, key), file);
    }
  }
}

ConfigFile ConfigFile::load(const std::string& file, const ConfigSchema& schema) {
  ConfigFile out;
  out.file_ = file;
  try {
    out.root_ = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    fail("cannot read config ", file, ": no such file or not readable");
  } catch (const YAML::Exception& e) {
    fail("config ", file, " is not valid YAML: ", e.what());
  }
  schema.validate(out.root_, file);
  return out;
}

YAML::Node ConfigFile::lookup(const std::string& name) const {
  const size_t dot = name.find('.');
  if (dot == std::string::npos) return root_[name];
  const YAML::Node section = root_[name.substr(0, dot)];
  if (!section || !section.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  return section[name.substr(dot + 1)];
}

std::string expand_home(const std::string& path) {
  if (path.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    return std::string(home ? home : "") + path.substr(1);
  }
  return path;
}

bool ConfigFile::has(const std::string& name) const { return static_cast<bool>(lookup(name)); }

std::optional<std::string> ConfigFile::text(const std::string& name) const {
  const YAML::Node node = lookup(name);
  if (!node) return std::nullopt;
  if (node.IsScalar()) return node.Scalar();
  std::string out;
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node item = node[i];
      out += (i == 0 ? "" : ",") + (item.IsScalar() ? item.Scalar() : written(item));
    }
  }
  return out;
}

}  // namespace tessera::launcher
