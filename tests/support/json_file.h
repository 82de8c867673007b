#pragma once
// Reading the JSON fixtures and golden files of tests.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/base/error.h"

namespace tessera::testing {

// The parsed contents of `path`. A file that cannot be opened (a missing fixture, TESSERA_SOURCE_DIR pointing
// elsewhere) is a tessera::Error naming it, so the test fails with the path rather than with a parse error.
inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  TESSERA_CHECK(in.good(), "cannot open ", path.string(), " (is TESSERA_SOURCE_DIR the repository root?)");
  return nlohmann::json::parse(in);
}

}  // namespace tessera::testing
