#pragma once
// Where tests find the source tree (fixtures) and the default model.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace tessera::testing {

inline std::filesystem::path source_dir() {
  const char* dir = std::getenv("TESSERA_SOURCE_DIR");
  return dir ? std::filesystem::path(dir) : std::filesystem::path(TESSERA_TEST_SOURCE_DIR);
}

inline std::filesystem::path fixture(const std::string& relative) { return source_dir() / "tests/fixtures" / relative; }

// $TESSERA_MODEL_PATH, else the cache location scripts/fetch-model.sh uses.
inline std::filesystem::path default_model_path() {
  if (const char* p = std::getenv("TESSERA_MODEL_PATH")) return p;
  if (const char* dir = std::getenv("TESSERA_MODEL_DIR")) {
    return std::filesystem::path(dir) / "SmolLM2-135M-Instruct.Q4_1.gguf";
  }
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::filesystem::path cache = xdg ? std::filesystem::path(xdg) : std::filesystem::path(home ? home : "/root") / ".cache";
  return cache / "tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

}  // namespace tessera::testing
