#pragma once
// SHA-256 of a file, for `tessera doctor` to check the default model against the hash scripts/fetch-model.sh pins
// (no crypto library is linked for this one use). FIPS 180-4, streamed in 1 MiB reads.
#include <filesystem>
#include <string>

namespace tessera::launcher {

// Lower-case hex digest; throws tessera::Error naming the file when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace tessera::launcher
