#pragma once
// SHA-256 (FIPS 180-4), for model integrity: `tessera doctor` checks the default model against the hash that
// scripts/fetch-model.sh pins, and the tests check fixtures and golden files against Python's hashlib digests.
// No crypto library is linked for this.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace tessera::runtime {

class Sha256 {
 public:
  void update(const void* data, size_t size);
  // The lower-case hex digest; the object is spent afterwards.
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t buffer_[64] = {};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

// The hex SHA-256 of a whole file, as `sha256sum` prints it (streamed in 1 MiB reads); throws tessera::Error naming
// the file when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace tessera::runtime
