// SHA-256 throughput of runtime/model/sha256.h (what --verify-sha256 costs): each backend this CPU has on an
// in-memory buffer, and sha256_file on the files given (cold or warm page cache: drop it first to measure the disk).
//   build/benchmarks/tessera_bench_sha256 [MiB, default 512] [FILE...]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/model/sha256.h"

using namespace tessera::runtime;

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? static_cast<size_t>(std::atol(argv[1])) : 512;
  std::vector<unsigned char> data(mib << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 2654435761u >> 13);
  std::printf("SHA-NI on this CPU: %s\n", sha256_sha_ni_supported() ? "yes" : "no");
  std::vector<Sha256Backend> backends = {Sha256Backend::kPortable};
  if (sha256_sha_ni_supported()) backends.push_back(Sha256Backend::kShaNi);
  for (const Sha256Backend backend : backends) {
    Sha256 hash(backend);
    const auto start = std::chrono::steady_clock::now();
    hash.update(data.data(), data.size());
    const std::string digest = hash.hex_digest();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-9s %zu MiB in %.3f s: %.0f MB/s (%s)\n", sha256_backend_name(backend), mib, s,
                static_cast<double>(data.size()) / 1e6 / s, digest.substr(0, 16).c_str());
  }
  for (int i = 2; i < argc; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const std::string digest = sha256_file(argv[i]);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double bytes = static_cast<double>(std::filesystem::file_size(argv[i]));
    std::printf("sha256_file %s: %.1f MB in %.3f s: %.0f MB/s  %s\n", argv[i], bytes / 1e6, s, bytes / 1e6 / s,
                digest.c_str());
  }
  return 0;
}
