#pragma once
// SHA-256 (FIPS 180-4), for model integrity: `tessera serve/generate --verify-sha256` checks every model file a rank
// maps against a manifest (runtime/model/model_integrity.h), `tessera doctor` checks the default model against the
// hash that scripts/fetch-model.sh pins, and the tests check fixtures and golden files against Python's hashlib
// digests. No crypto library is linked for this. Two compression functions: the x86 SHA extensions (SHA-NI, several
// times faster) where the CPU has them, chosen at run time, and a portable one everywhere else; both give the same
// digests (tests/runtime/test_sha256.cpp checks both against the FIPS / NIST vectors).
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace tessera::runtime {

enum class Sha256Backend {
  kPortable,  // plain C++
  kShaNi,     // x86 SHA extensions (sha_ni in /proc/cpuinfo); only where sha256_sha_ni_supported()
};

// Whether this CPU (and build) can run the SHA-NI compression function.
bool sha256_sha_ni_supported();
// The backend a default-constructed Sha256 uses: SHA-NI where supported, else portable.
Sha256Backend sha256_best_backend();
const char* sha256_backend_name(Sha256Backend backend);  // "sha-ni", "portable"

class Sha256 {
 public:
  Sha256() : Sha256(sha256_best_backend()) {}
  // Throws tessera::Error when `backend` is SHA-NI on a CPU without it.
  explicit Sha256(Sha256Backend backend);

  void update(const void* data, size_t size);
  // The lower-case hex digest; the object is spent afterwards.
  std::string hex_digest();
  Sha256Backend backend() const { return backend_; }

 private:
  void compress(const uint8_t* blocks, size_t count);

  Sha256Backend backend_;
  std::array<uint32_t, 8> state_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t buffer_[64] = {};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

// The hex SHA-256 of a whole file, as `sha256sum` prints it (streamed in 4 MiB reads); throws tessera::Error naming
// the file when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace tessera::runtime
