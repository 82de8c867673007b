#include "runtime/device/host_memory.h"

#include <fstream>
#include <string>

#include "kernels/base/error.h"

namespace tessera::runtime {

uint64_t available_host_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

int64_t host_kv_blocks(const KvCacheSizing& sizing, uint64_t block_bytes, int64_t default_blocks) {
  TESSERA_CHECK(block_bytes > 0, "KV block of zero bytes");
  if (sizing.blocks > 0) return sizing.blocks;
  uint64_t budget = 0;
  std::string source;
  if (sizing.memory_bytes > 0) {
    budget = sizing.memory_bytes;
    source = "the KV cache memory setting";
  } else if (sizing.memory_fraction > 0.0) {
    TESSERA_CHECK(sizing.memory_fraction <= 1.0, "KV cache memory fraction must be in (0, 1], got ",
                  sizing.memory_fraction);
    const uint64_t available = available_host_memory_bytes();
    TESSERA_CHECK(available > 0, "cannot read MemAvailable from /proc/meminfo to size the KV cache; give its size "
                                 "in blocks or bytes instead");
    const int ranks = sizing.ranks_on_node > 0 ? sizing.ranks_on_node : 1;
    budget = static_cast<uint64_t>(static_cast<double>(available) * sizing.memory_fraction) / static_cast<uint64_t>(ranks);
    source = concat(sizing.memory_fraction, " of the ", available >> 20, " MiB available, shared by ", ranks,
                    " ranks on this node");
  } else {
    return default_blocks;
  }
  const auto blocks = static_cast<int64_t>(budget / block_bytes);
  TESSERA_CHECK(blocks >= 1, "the KV cache budget of ", budget, " bytes (", source, ") does not hold one block of ",
                block_bytes, " bytes");
  return blocks;
}

}  // namespace tessera::runtime
