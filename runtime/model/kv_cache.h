#pragma once
// This rank's paged KV cache: for each of its layers, K and V of its KV heads only, in fixed-size blocks
// ([num_blocks, block_size, kv_heads, head_dim] each). Which blocks a sequence uses is decided by the leader
// (the block tables travel in the StepPlan), so every rank of the replica addresses the same blocks.
#include <vector>

#include "kernels/cpu/attention.h"
#include "runtime/core/tensor.h"

namespace tessera::runtime {

struct KvCacheShape {
  int num_layers = 0;  // this stage's layers
  int num_blocks = 0;
  int block_size = 16;
  int kv_heads = 0;    // this rank's KV heads
  int head_dim = 0;
  kernels::cpu::KvDtype dtype = kernels::cpu::KvDtype::kF32;  // what each element is stored as (--kv-cache-dtype)
  size_t bytes() const;
};

class PagedKvCache {
 public:
  explicit PagedKvCache(KvCacheShape shape);
  const KvCacheShape& shape() const { return shape_; }
  kernels::cpu::KvCacheView layer(int local_layer);

 private:
  KvCacheShape shape_;
  std::vector<Tensor> keys_;    // one per layer
  std::vector<Tensor> values_;
};

}  // namespace tessera::runtime
