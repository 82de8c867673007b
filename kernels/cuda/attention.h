#pragma once
// Causal grouped-query attention over the paged KV cache on the GPU (kernels/cuda/kv_cache.h), the CPU twin's
// semantics (kernels/cpu/attention.h): query head h reads KV head h / (heads / kv_heads), out =
// softmax(q · kᵀ * scale) · v with f32 accumulation, whatever the storage type (f32 or bf16; q, out and
// the cache share it). head_dim <= 256 and heads / kv_heads <= 16.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/kv_cache.h"

namespace tessera::kernels::cuda {

// Device scratch for the split-K partial results of decode, grown on demand and reused.
class AttentionWorkspace {
 public:
  AttentionWorkspace() = default;
  ~AttentionWorkspace();
  AttentionWorkspace(const AttentionWorkspace&) = delete;
  AttentionWorkspace& operator=(const AttentionWorkspace&) = delete;
  float* reserve(size_t floats);  // synchronises the device when it grows

 private:
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

// Decode: one new token for each of num_seqs sequences, whose K/V is already written at position
// context_lens[s] - 1; it attends to positions [0, context_lens[s]). Flash-decoding: the keys of a sequence
// are split into partitions of 256 processed by separate thread blocks (every query head of a KV group
// shares the block, so K and V are read once per group), then merged.
//   block_tables: [num_seqs, max_blocks_per_seq] device.  context_lens: [num_seqs] device, each in
//   [1, max_context_len]; max_context_len is the host's bound (it sizes the grid).
//   q: [num_seqs, heads, head_dim], rows q_seq_stride apart.  out: same shape, rows out_seq_stride apart.
void paged_attention_decode(const DeviceKvCache<float>& cache, const int32_t* block_tables, int64_t max_blocks_per_seq,
                            const int32_t* context_lens, int64_t max_context_len, int64_t num_seqs, const float* q,
                            int64_t q_seq_stride, int64_t heads, float scale, float* out, int64_t out_seq_stride,
                            AttentionWorkspace& workspace, cudaStream_t stream);
void paged_attention_decode(const DeviceKvCache<__nv_bfloat16>& cache, const int32_t* block_tables,
                            int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t max_context_len,
                            int64_t num_seqs, const __nv_bfloat16* q, int64_t q_seq_stride, int64_t heads, float scale,
                            __nv_bfloat16* out, int64_t out_seq_stride, AttentionWorkspace& workspace,
                            cudaStream_t stream);

// Prefill of one sequence (like cpu::attention): n query tokens at positions start .. start + n - 1, their K/V
// already written; token t attends to [0, start + t]. Tiled: a thread block takes 8 (token, head) rows of one
// KV group and streams the keys through shared memory in tiles, with an online softmax per row.
//   block_table: [table_len] device.  q: [n, heads, head_dim], rows q_token_stride apart.
//   out: [n, heads, head_dim], rows out_token_stride apart.
void attention_prefill(const DeviceKvCache<float>& cache, const int32_t* block_table, int64_t table_len, int64_t start,
                       int64_t n, const float* q, int64_t q_token_stride, int64_t heads, float scale, float* out,
                       int64_t out_token_stride, cudaStream_t stream);
void attention_prefill(const DeviceKvCache<__nv_bfloat16>& cache, const int32_t* block_table, int64_t table_len,
                       int64_t start, int64_t n, const __nv_bfloat16* q, int64_t q_token_stride, int64_t heads,
                       float scale, __nv_bfloat16* out, int64_t out_token_stride, cudaStream_t stream);

}  // namespace tessera::kernels::cuda
