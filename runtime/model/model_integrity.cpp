#include "runtime/model/model_integrity.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "kernels/base/error.h"
#include "runtime/model/model_source.h"
#include "runtime/model/safetensors_checkpoint.h"
#include "runtime/model/sha256.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;

bool is_hex_digit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// sha256sum escapes a name holding '\\' or a newline: the line starts with '\\' and the name has "\\\\" and "\\n".
std::optional<std::string> unescape_name(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '\\') {
      out += name[i];
      continue;
    }
    if (i + 1 >= name.size()) return std::nullopt;
    const char next = name[++i];
    if (next == '\\') out += '\\';
    else if (next == 'n') out += '\n';
    else if (next == 'r') out += '\r';
    else return std::nullopt;
  }
  return out;
}

fs::path canonical_or_lexical(const fs::path& path) {
  std::error_code error;
  fs::path out = fs::weakly_canonical(path, error);
  if (error) return fs::absolute(path).lexically_normal();
  return out;
}

// Files besides the weights that the runtime reads from a Hugging Face directory: checked when listed.
constexpr const char* kDirectoryExtras[] = {"config.json", "generation_config.json", "model.safetensors.index.json",
                                            "tokenizer.json", "tokenizer_config.json"};

}  // namespace

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), is_hex_digit);
}

Sha256Expectation parse_sha256_manifest(std::string_view text, const std::string& source, const fs::path& directory) {
  Sha256Expectation out;
  out.source = source;
  out.directory = directory;
  int line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos || line.front() == '#') continue;
    const bool escaped = line.front() == '\\';
    if (escaped) line.remove_prefix(1);
    // "<64 hex><space><' ' or '*'><name>"
    const bool well_formed = line.size() >= 67 && is_sha256_hex(line.substr(0, 64)) && line[64] == ' ' &&
                             (line[65] == ' ' || line[65] == '*');
    TESSERA_CHECK(well_formed, source, ":", line_number,
                  ": not a sha256sum line (\"<64 hex digits>  <file name>\", as `sha256sum FILES` writes them)");
    std::optional<std::string> name = std::string(line.substr(66));
    if (escaped) name = unescape_name(*name);
    TESSERA_CHECK(name && !name->empty(), source, ":", line_number, ": bad escape in the file name");
    out.entries.push_back({lower(line.substr(0, 64)), *name, line_number});
  }
  TESSERA_CHECK(!out.entries.empty(), source, ": no sha256sum lines in the manifest");
  return out;
}

Sha256Expectation load_sha256_expectation(const std::string& argument) {
  if (is_sha256_hex(argument)) {
    Sha256Expectation out;
    out.source = "--verify-sha256";
    out.single_sha256 = lower(argument);
    return out;
  }
  const fs::path path(argument);
  std::error_code error;
  TESSERA_CHECK(fs::is_regular_file(path, error), "--verify-sha256: '", argument,
                "' is neither a 64-hex SHA-256 nor a manifest file (sha256sum's output)");
  std::ifstream in(path, std::ios::binary);
  TESSERA_CHECK(in.good(), "--verify-sha256: cannot read the manifest ", argument);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_sha256_manifest(text.str(), argument, fs::absolute(path).parent_path());
}

std::optional<std::string> expected_sha256(const Sha256Expectation& expectation, const fs::path& file) {
  const fs::path wanted = canonical_or_lexical(file);
  for (const Sha256ManifestEntry& entry : expectation.entries) {
    const fs::path name(entry.name);
    const fs::path resolved = name.is_absolute() ? name : expectation.directory / name;
    if (canonical_or_lexical(resolved) == wanted) return entry.sha256;
  }
  const std::string basename = file.filename().string();
  const Sha256ManifestEntry* found = nullptr;
  for (const Sha256ManifestEntry& entry : expectation.entries) {
    if (fs::path(entry.name).filename().string() != basename) continue;
    TESSERA_CHECK(found == nullptr || found->sha256 == entry.sha256, "--verify-sha256: ", expectation.source,
                  " lists '", basename, "' twice with different hashes (lines ", found ? found->line : 0, " and ",
                  entry.line, "), and neither is ", file.string(), " relative to the manifest");
    found = &entry;
  }
  if (found) return found->sha256;
  return std::nullopt;
}

std::vector<fs::path> model_weight_files(const fs::path& model) {
  if (is_dummy_model_path(model)) return {};
  std::error_code error;
  const fs::file_status status = fs::status(model, error);
  TESSERA_CHECK(fs::exists(status), "model path ", model.string(), " does not exist");
  if (!fs::is_directory(status)) return {model};
  const fs::path index_path = model / SafetensorsCheckpoint::kIndexFile;
  if (!fs::exists(index_path)) return {model / SafetensorsCheckpoint::kSingleFile};
  std::ifstream in(index_path, std::ios::binary);
  TESSERA_CHECK(in.good(), "cannot read safetensors index ", index_path.string());
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(index_path.string(), ": not valid JSON: ", e.what());
  }
  const auto map = index.is_object() ? index.find("weight_map") : index.end();
  TESSERA_CHECK(index.is_object() && map != index.end() && map->is_object() && !map->empty(), index_path.string(),
                ": missing or empty 'weight_map' object");
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : map->items()) {
    TESSERA_CHECK(shard.is_string(), index_path.string(), ": tensor '", tensor, "' maps to a ", shard.type_name(),
                  ", not a file name");
    const std::string& name = shard.get_ref<const std::string&>();
    TESSERA_CHECK(!name.empty() && fs::path(name) == fs::path(name).filename() && name != "." && name != "..",
                  index_path.string(), ": tensor '", tensor, "' maps to '", name,
                  "', which is not a file name in the model directory");
    shards.insert(name);
  }
  std::vector<fs::path> out;
  for (const std::string& shard : shards) out.push_back(model / shard);
  return out;
}

std::string Sha256Verification::summary() const {
  const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  const double rate = seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0;
  char text[200];
  std::snprintf(text, sizeof(text), "%zu file%s, %.1f MiB in %.2f s (%.0f MB/s, %s, %d thread%s)", files,
                files == 1 ? "" : "s", mib, seconds, rate, backend.c_str(), threads, threads == 1 ? "" : "s");
  return text;
}

Sha256Verification verify_model_sha256(const fs::path& model, const Sha256Expectation& expectation,
                                       int max_threads) {
  const auto start = std::chrono::steady_clock::now();
  struct Item {
    fs::path path;
    std::string expected;
    std::string actual;
    std::string error;
  };
  std::vector<Item> items;
  const std::vector<fs::path> weights = model_weight_files(model);
  TESSERA_CHECK(!weights.empty(), "--verify-sha256: ", model.string(), " has no model files to verify");
  if (expectation.single_sha256) {
    TESSERA_CHECK(weights.size() == 1, "--verify-sha256: a single hash checks a single-file model, but ",
                  model.string(), " maps ", weights.size(), " files: give a manifest (sha256sum *.safetensors > "
                  "model.sha256)");
    items.push_back({weights[0], *expectation.single_sha256, {}, {}});
  } else {
    // Every mapped file must be listed: checked before hashing anything, so that a missing entry fails at once.
    for (const fs::path& file : weights) {
      std::optional<std::string> expected = expected_sha256(expectation, file);
      TESSERA_CHECK(expected.has_value(), "model integrity check failed: ", file.string(), " is not in ",
                    expectation.source, " (every model file must be listed)");
      items.push_back({file, *expected, {}, {}});
    }
    std::error_code error;
    if (fs::is_directory(model, error)) {
      for (const char* extra : kDirectoryExtras) {
        const fs::path file = model / extra;
        if (!fs::is_regular_file(file, error)) continue;
        if (std::optional<std::string> expected = expected_sha256(expectation, file)) {
          items.push_back({file, *expected, {}, {}});
        }
      }
    }
  }
  for (const Item& item : items) {
    std::error_code error;
    TESSERA_CHECK(fs::is_regular_file(item.path, error), "model integrity check failed: ", item.path.string(),
                  " is missing (listed in ", expectation.source, ")");
  }

  // Hash several files at once (a sharded checkpoint); each file is one sequential stream.
  const int threads = std::max(1, std::min<int>(max_threads, static_cast<int>(items.size())));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < items.size(); i = next++) {
      try {
        items[i].actual = sha256_file(items[i].path);
      } catch (const std::exception& e) {
        items[i].error = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();

  Sha256Verification out;
  out.threads = threads;
  out.backend = sha256_backend_name(sha256_best_backend());
  for (const Item& item : items) {
    TESSERA_CHECK(item.error.empty(), "model integrity check failed: ", item.error);
    TESSERA_CHECK(item.actual == item.expected, "model integrity check failed: ", item.path.string(),
                  ": expected sha256 ", item.expected, ", got ", item.actual, " (", expectation.source, ")");
    std::error_code error;
    out.bytes += fs::file_size(item.path, error);
    ++out.files;
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

std::future<Sha256Verification> start_model_sha256_verification(fs::path model, Sha256Expectation expectation,
                                                                int max_threads) {
  // The thread owns its copies of the arguments.
  return std::async(std::launch::async,
                    [model = std::move(model), expectation = std::move(expectation), max_threads] {
                      return verify_model_sha256(model, expectation, max_threads);
                    });
}

}  // namespace tessera::runtime
