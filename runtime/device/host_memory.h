#pragma once
// Host memory for the CPU backend's KV cache: what the node has available, and how many blocks a sizing asks for.
#include <cstdint>

#include "runtime/engine/replica_options.h"

namespace tessera::runtime {

// MemAvailable from /proc/meminfo (what the kernel can give without swapping), in bytes; 0 when unknown.
uint64_t available_host_memory_bytes();

// The KV blocks of `block_bytes` each that `sizing` asks for on this rank, `default_blocks` when it sets nothing.
// Throws tessera::Error (with the numbers) when the budget does not hold one block.
int64_t host_kv_blocks(const KvCacheSizing& sizing, uint64_t block_bytes, int64_t default_blocks);

}  // namespace tessera::runtime
