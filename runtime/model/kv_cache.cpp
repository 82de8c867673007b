#include "runtime/model/kv_cache.h"

#include "kernels/base/error.h"

namespace tessera::runtime {

size_t KvCacheShape::bytes() const {
  return 2ull * static_cast<size_t>(num_layers) * num_blocks * block_size * kv_heads * head_dim *
         kernels::cpu::kv_dtype_bytes(dtype);
}

PagedKvCache::PagedKvCache(KvCacheShape shape) : shape_(shape) {
  TESSERA_CHECK(shape.num_blocks > 0 && shape.block_size > 0, "KV cache needs at least one block of at least one slot");
  const DType element = shape.dtype == kernels::cpu::KvDtype::kF16 ? DType::F16 : DType::F32;
  for (int l = 0; l < shape.num_layers; ++l) {
    const Shape block_shape{shape.num_blocks, shape.block_size, shape.kv_heads, shape.head_dim};
    keys_.emplace_back(element, block_shape);
    values_.emplace_back(element, block_shape);
  }
}

kernels::cpu::KvCacheView PagedKvCache::layer(int local_layer) {
  TESSERA_CHECK(local_layer >= 0 && local_layer < shape_.num_layers, "KV cache has no local layer ", local_layer);
  kernels::cpu::KvCacheView view;
  view.k = keys_[local_layer].raw();
  view.v = values_[local_layer].raw();
  view.dtype = shape_.dtype;
  view.num_blocks = shape_.num_blocks;
  view.block_size = shape_.block_size;
  view.kv_heads = shape_.kv_heads;
  view.head_dim = shape_.head_dim;
  return view;
}

}  // namespace tessera::runtime
