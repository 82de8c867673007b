#pragma once
// Where tests find the source tree (fixtures), the default model and llama.cpp's vocab-only GGUFs: the same
// places scripts/fetch-model.sh and scripts/fetch-vocabs.sh put them.
#include <cstdlib>
#include <filesystem>
#include <string>

#ifndef TESSERA_TEST_SOURCE_DIR
#define TESSERA_TEST_SOURCE_DIR "."  // tests/CMakeLists.txt defines it; CTest also sets TESSERA_SOURCE_DIR
#endif

namespace tessera::testing {

inline std::filesystem::path source_dir() {
  const char* dir = std::getenv("TESSERA_SOURCE_DIR");
  return dir ? std::filesystem::path(dir) : std::filesystem::path(TESSERA_TEST_SOURCE_DIR);
}

inline std::filesystem::path fixture(const std::string& relative) { return source_dir() / "tests/fixtures" / relative; }

// ${XDG_CACHE_HOME:-~/.cache}/tessera
inline std::filesystem::path tessera_cache_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::filesystem::path cache = xdg ? std::filesystem::path(xdg) : std::filesystem::path(home ? home : "/root") / ".cache";
  return cache / "tessera";
}

// $TESSERA_MODEL_PATH, else the cache location scripts/fetch-model.sh uses.
inline std::filesystem::path default_model_path() {
  if (const char* p = std::getenv("TESSERA_MODEL_PATH")) return p;
  if (const char* dir = std::getenv("TESSERA_MODEL_DIR")) {
    return std::filesystem::path(dir) / "SmolLM2-135M-Instruct.Q4_1.gguf";
  }
  return tessera_cache_dir() / "models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// A vocab-only GGUF of llama.cpp ("ggml-vocab-llama-bpe.gguf") where scripts/fetch-vocabs.sh puts it.
inline std::filesystem::path vocab_path(const std::string& name) {
  if (const char* dir = std::getenv("TESSERA_VOCAB_DIR")) return std::filesystem::path(dir) / name;
  return tessera_cache_dir() / "vocab" / name;
}

inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

// True when the files `make test` fetches before it runs CTest (the default model, llama.cpp's vocab-only GGUFs)
// must be there: TESSERA_REQUIRE_TEST_DATA=1, which `make test` (and so CI) sets. Then an absent file fails the
// test; otherwise it skips it, and CTest reports the case Skipped (never Passed).
inline bool test_data_required() {
  const char* v = std::getenv("TESSERA_REQUIRE_TEST_DATA");
  return v != nullptr && std::string(v) == "1";
}

}  // namespace tessera::testing

// In a GoogleTest test (or SetUp): when `path` does not exist, fails the test if test data is required
// (TESSERA_REQUIRE_TEST_DATA=1) and skips it otherwise, naming the path and `how_to_get` it. Only for files that
// are fetched, never for committed fixtures (a missing fixture is a broken tree: read it and let the test fail).
#define TESSERA_REQUIRE_FILE(path, how_to_get)                                                                \
  do {                                                                                                        \
    if (!std::filesystem::exists(path)) {                                                                     \
      if (::tessera::testing::test_data_required()) {                                                         \
        GTEST_FAIL() << (path) << " is absent and TESSERA_REQUIRE_TEST_DATA=1 (make test, CI) requires it ("   \
                     << how_to_get << ")";                                                                    \
      }                                                                                                       \
      GTEST_SKIP() << (path) << " is absent (" << how_to_get << ")";                                          \
    }                                                                                                         \
  } while (false)

// The default model file (testing::default_model_path()).
#define TESSERA_REQUIRE_MODEL(path) \
  TESSERA_REQUIRE_FILE(path, "run scripts/fetch-model.sh, or set TESSERA_MODEL_PATH or TESSERA_MODEL_DIR")

// A vocab-only GGUF of llama.cpp (testing::vocab_path()).
#define TESSERA_REQUIRE_VOCAB(path) TESSERA_REQUIRE_FILE(path, "run scripts/fetch-vocabs.sh, or set TESSERA_VOCAB_DIR")
