#pragma once
// One layer's paged KV cache in device memory, laid out like the CPU twin's (kernels/cpu/attention.h):
// K and V each [num_blocks, block_size, kv_heads, head_dim] row-major; position p of a sequence is slot
// p % block_size of block block_table[p / block_size]. Storage f32 or bf16; attention accumulates in f32.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::kernels::cuda {

template <class T>
struct DeviceKvCache {
  T* k = nullptr;
  T* v = nullptr;
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
};

// Stores the keys and values of n new tokens at sequence positions [start, start + n) (like cpu::write_kv).
//   block_table: [table_len] device block ids covering start + n positions (checked on the host by length).
//   k, v: [n, kv_heads, head_dim] device, token rows k_token_stride / v_token_stride elements apart.
// Block ids are device data: an id outside [0, num_blocks) skips its token (a kernel cannot throw); the
// runtime's block manager hands out only valid ids.
void write_kv(const DeviceKvCache<float>& cache, const int32_t* block_table, int64_t table_len, int64_t start,
              int64_t n, const float* k, int64_t k_token_stride, const float* v, int64_t v_token_stride,
              cudaStream_t stream);
void write_kv(const DeviceKvCache<__nv_bfloat16>& cache, const int32_t* block_table, int64_t table_len, int64_t start,
              int64_t n, const __nv_bfloat16* k, int64_t k_token_stride, const __nv_bfloat16* v,
              int64_t v_token_stride, cudaStream_t stream);

}  // namespace tessera::kernels::cuda
