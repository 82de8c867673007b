#pragma once
// How many KV-cache blocks fit on a device: the budget is gpu_memory_fraction of the device's memory,
// minus the weights this rank holds and a reserve for activations, workspaces and communicator buffers;
// the rest becomes KV blocks. Pure arithmetic, so that the sizing is tested without a GPU.
#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera::runtime {

// Bytes of one KV block on this rank: K and V, for each of its layers, block_size tokens of its
// kv_heads x head_dim elements.
uint64_t kv_block_bytes(int layers, int block_size, int kv_heads, int head_dim, size_t element_bytes);

struct KvCacheBudgetInput {
  uint64_t total_device_bytes = 0;
  double gpu_memory_fraction = 0.9;  // share of the device Tessera may use, weights included
  uint64_t weight_bytes = 0;         // this rank's weights on the device
  uint64_t reserved_bytes = 0;       // activations, GEMM workspaces, staging and NCCL buffers
  uint64_t block_bytes = 0;          // kv_block_bytes(...)
};

struct KvCacheBudget {
  uint64_t budget_bytes = 0;  // total * fraction
  uint64_t kv_bytes = 0;      // num_blocks * block_bytes
  int64_t num_blocks = 0;
  std::string describe() const;  // "1234 KV blocks (2.4 GiB) of a 72.0 GiB budget"
};

// Throws tessera::Error when the fraction is outside (0, 1], a size is zero, or not one block fits; the
// message gives every number so that the user sees what to change.
KvCacheBudget plan_kv_cache(const KvCacheBudgetInput& input);

}  // namespace tessera::runtime
