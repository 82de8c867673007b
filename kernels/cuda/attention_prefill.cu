// Prefill attention over the paged KV cache: a thread block takes 8 rows (token, query head) of one KV
// group, a warp per row, and streams the keys through shared memory in tiles of 16 (K and V converted to
// f32 once per tile and shared by the 8 rows), keeping an online softmax (running max, sum and output)
// per row, so that memory does not grow with the sequence. Causal: row (t, h) stops at position start + t.
#include <math_constants.h>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"

namespace tessera::kernels::cuda {
namespace {

constexpr int kRowsPerBlock = 8;  // one warp each
constexpr int kKeyTile = 16;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxGroup = 16;
constexpr int kMaxPerLane = kMaxHeadDim / 32;

template <class T>
__global__ void prefill_kernel(DeviceKvCache<T> cache, const int32_t* __restrict__ block_table, int64_t start,
                               int64_t n, const T* __restrict__ q, int64_t q_stride, int group, float scale,
                               T* __restrict__ out, int64_t out_stride) {
  extern __shared__ float smem[];
  __shared__ int64_t tile_base[kKeyTile];
  const int head_dim = static_cast<int>(cache.head_dim);
  float* k_s = smem;                        // [kKeyTile][head_dim]
  float* v_s = smem + kKeyTile * head_dim;  // [kKeyTile][head_dim]
  const int kv_head = blockIdx.y;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int64_t rows = n * group;
  const int64_t first_row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
  const int64_t row = first_row + warp;
  const bool valid = row < rows;
  const int64_t token = valid ? row / group : 0;
  const int head = kv_head * group + static_cast<int>(valid ? row % group : 0);
  const int64_t limit = valid ? start + token + 1 : 0;  // keys [0, limit)
  const int64_t last_row = min(first_row + kRowsPerBlock, rows) - 1;
  const int64_t block_limit = start + last_row / group + 1;

  float q_reg[kMaxPerLane];
  float acc[kMaxPerLane];
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + 32 * i;
    q_reg[i] = (valid && d < head_dim) ? detail::to_f32(q[token * q_stride + static_cast<int64_t>(head) * head_dim + d])
                                       : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -CUDART_INF_F;
  float l = 0.0f;

  for (int64_t tile = 0; tile < block_limit; tile += kKeyTile) {
    __syncthreads();  // the previous tile is no longer read
    if (threadIdx.x < kKeyTile) {
      const int64_t position = tile + threadIdx.x;
      int64_t base = -1;
      if (position < block_limit) {
        const int64_t block = block_table[position / cache.block_size];
        if (block >= 0 && block < cache.num_blocks) {
          base = ((block * cache.block_size + position % cache.block_size) * cache.kv_heads + kv_head) * head_dim;
        }
      }
      tile_base[threadIdx.x] = base;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < kKeyTile * head_dim; i += blockDim.x) {
      const int64_t base = tile_base[i / head_dim];
      const int d = i % head_dim;
      k_s[i] = base >= 0 ? detail::to_f32(cache.k[base + d]) : 0.0f;
      v_s[i] = base >= 0 ? detail::to_f32(cache.v[base + d]) : 0.0f;
    }
    __syncthreads();
    if (!valid) continue;
    const int64_t keys = min(static_cast<int64_t>(kKeyTile), limit - tile);
    for (int kk = 0; kk < keys; ++kk) {
      float partial = 0.0f;
#pragma unroll
      for (int i = 0; i < kMaxPerLane; ++i) {
        const int d = lane + 32 * i;
        if (d < head_dim) partial += q_reg[i] * k_s[kk * head_dim + d];
      }
      const float s = detail::warp_sum(partial) * scale;
      const float m_new = fmaxf(m, s);
      const float correction = expf(m - m_new);
      const float p = expf(s - m_new);
      l = l * correction + p;
#pragma unroll
      for (int i = 0; i < kMaxPerLane; ++i) {
        const int d = lane + 32 * i;
        if (d < head_dim) acc[i] = acc[i] * correction + p * v_s[kk * head_dim + d];
      }
      m = m_new;
    }
  }
  if (!valid) return;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < head_dim) out[token * out_stride + static_cast<int64_t>(head) * head_dim + d] = detail::from_f32<T>(acc[i] / l);
  }
}

template <class T>
void launch(const DeviceKvCache<T>& cache, const int32_t* block_table, int64_t table_len, int64_t start, int64_t n,
            const T* q, int64_t q_stride, int64_t heads, float scale, T* out, int64_t out_stride, cudaStream_t stream) {
  TESSERA_CHECK(cache.block_size > 0 && cache.kv_heads > 0 && cache.head_dim > 0 && cache.head_dim <= kMaxHeadDim,
                "attention_prefill (CUDA): bad cache shape block_size=", cache.block_size, " kv_heads=", cache.kv_heads,
                " head_dim=", cache.head_dim, " (head_dim <= ", kMaxHeadDim, ")");
  TESSERA_CHECK(heads > 0 && heads % cache.kv_heads == 0 && heads / cache.kv_heads <= kMaxGroup,
                "attention_prefill (CUDA): ", heads, " query heads over ", cache.kv_heads,
                " KV heads (a multiple, at most ", kMaxGroup, " per KV head)");
  TESSERA_CHECK(start >= 0 && n >= 0 && n <= INT32_MAX / kMaxGroup, "attention_prefill (CUDA): bad range start=", start,
                " n=", n);
  TESSERA_CHECK(q_stride >= heads * cache.head_dim && out_stride >= heads * cache.head_dim,
                "attention_prefill (CUDA): q/out strides ", q_stride, "/", out_stride,
                " are smaller than heads * head_dim = ", heads * cache.head_dim);
  if (n == 0) return;
  TESSERA_CHECK(table_len * cache.block_size >= start + n, "attention_prefill (CUDA): block table of ", table_len,
                " blocks covers fewer than ", start + n, " positions");
  const int64_t group = heads / cache.kv_heads;
  const int64_t row_blocks = (n * group + kRowsPerBlock - 1) / kRowsPerBlock;
  const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(cache.kv_heads));
  const size_t shared = size_t{2} * kKeyTile * static_cast<size_t>(cache.head_dim) * sizeof(float);
  prefill_kernel<T><<<grid, kRowsPerBlock * 32, shared, stream>>>(cache, block_table, start, n, q, q_stride,
                                                                  static_cast<int>(group), scale, out, out_stride);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void attention_prefill(const DeviceKvCache<float>& cache, const int32_t* block_table, int64_t table_len, int64_t start,
                       int64_t n, const float* q, int64_t q_token_stride, int64_t heads, float scale, float* out,
                       int64_t out_token_stride, cudaStream_t stream) {
  launch(cache, block_table, table_len, start, n, q, q_token_stride, heads, scale, out, out_token_stride, stream);
}
void attention_prefill(const DeviceKvCache<__nv_bfloat16>& cache, const int32_t* block_table, int64_t table_len,
                       int64_t start, int64_t n, const __nv_bfloat16* q, int64_t q_token_stride, int64_t heads,
                       float scale, __nv_bfloat16* out, int64_t out_token_stride, cudaStream_t stream) {
  launch(cache, block_table, table_len, start, n, q, q_token_stride, heads, scale, out, out_token_stride, stream);
}

}  // namespace tessera::kernels::cuda
