#include "runtime/device/kv_cache_budget.h"

#include <cmath>
#include <cstdio>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

std::string gib(uint64_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return text;
}

}  // namespace

uint64_t kv_block_bytes(int layers, int block_size, int kv_heads, int head_dim, size_t element_bytes) {
  TESSERA_CHECK(layers > 0 && block_size > 0 && kv_heads > 0 && head_dim > 0 && element_bytes > 0,
                "KV block size needs positive layers, block_size, kv_heads, head_dim and element size; got ", layers,
                ", ", block_size, ", ", kv_heads, ", ", head_dim, ", ", element_bytes);
  return uint64_t{2} * static_cast<uint64_t>(layers) * static_cast<uint64_t>(block_size) *
         static_cast<uint64_t>(kv_heads) * static_cast<uint64_t>(head_dim) * element_bytes;
}

std::string KvCacheBudget::describe() const {
  return concat(num_blocks, " KV blocks (", gib(kv_bytes), ") of a ", gib(budget_bytes), " budget");
}

KvCacheBudget plan_kv_cache(const KvCacheBudgetInput& input) {
  TESSERA_CHECK(input.gpu_memory_fraction > 0.0 && input.gpu_memory_fraction <= 1.0,
                "gpu_memory_fraction must be in (0, 1], got ", input.gpu_memory_fraction);
  TESSERA_CHECK(input.total_device_bytes > 0, "KV cache sizing: the device reports 0 bytes of memory");
  TESSERA_CHECK(input.block_bytes > 0, "KV cache sizing: a KV block of 0 bytes");
  KvCacheBudget budget;
  budget.budget_bytes =
      static_cast<uint64_t>(std::floor(static_cast<double>(input.total_device_bytes) * input.gpu_memory_fraction));
  const uint64_t fixed = input.weight_bytes + input.reserved_bytes;
  const uint64_t left = budget.budget_bytes > fixed ? budget.budget_bytes - fixed : 0;
  budget.num_blocks = static_cast<int64_t>(left / input.block_bytes);
  budget.kv_bytes = static_cast<uint64_t>(budget.num_blocks) * input.block_bytes;
  TESSERA_CHECK(budget.num_blocks > 0, "no room for the KV cache: gpu_memory_fraction ", input.gpu_memory_fraction,
                " of ", gib(input.total_device_bytes), " is ", gib(budget.budget_bytes), ", the weights take ",
                gib(input.weight_bytes), " and the reserve for activations and workspaces ", gib(input.reserved_bytes),
                ", leaving ", left, " bytes, less than one KV block of ", input.block_bytes,
                " bytes; raise gpu_memory_fraction, use more tensor-parallel ranks or a smaller model");
  return budget;
}

}  // namespace tessera::runtime
