#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kv_cache.h"

namespace tessera::kernels::cuda {
namespace {

template <class T>
__global__ void write_kv_kernel(DeviceKvCache<T> cache, const int32_t* __restrict__ block_table, int64_t start,
                                const T* __restrict__ k, int64_t k_stride, const T* __restrict__ v, int64_t v_stride) {
  const int64_t token = blockIdx.x;
  const int64_t head = blockIdx.y;
  const int64_t position = start + token;
  const int64_t block = block_table[position / cache.block_size];
  if (block < 0 || block >= cache.num_blocks) return;
  const int64_t slot = position % cache.block_size;
  const int64_t offset = ((block * cache.block_size + slot) * cache.kv_heads + head) * cache.head_dim;
  const T* k_src = k + token * k_stride + head * cache.head_dim;
  const T* v_src = v + token * v_stride + head * cache.head_dim;
  for (int64_t d = threadIdx.x; d < cache.head_dim; d += blockDim.x) {
    cache.k[offset + d] = k_src[d];
    cache.v[offset + d] = v_src[d];
  }
}

template <class T>
void launch(const DeviceKvCache<T>& cache, const int32_t* block_table, int64_t table_len, int64_t start, int64_t n,
            const T* k, int64_t k_stride, const T* v, int64_t v_stride, cudaStream_t stream) {
  TESSERA_CHECK(cache.block_size > 0 && cache.kv_heads > 0 && cache.head_dim > 0 && cache.kv_heads <= 65535,
                "write_kv (CUDA): bad cache shape block_size=", cache.block_size, " kv_heads=", cache.kv_heads,
                " head_dim=", cache.head_dim);
  TESSERA_CHECK(start >= 0 && n >= 0 && n <= INT32_MAX, "write_kv (CUDA): bad range start=", start, " n=", n);
  TESSERA_CHECK(k_stride >= cache.kv_heads * cache.head_dim && v_stride >= cache.kv_heads * cache.head_dim,
                "write_kv (CUDA): token strides ", k_stride, "/", v_stride, " are smaller than kv_heads * head_dim = ",
                cache.kv_heads * cache.head_dim);
  if (n == 0) return;
  const int64_t blocks_needed = (start + n + cache.block_size - 1) / cache.block_size;
  TESSERA_CHECK(table_len >= blocks_needed, "write_kv (CUDA): block table of ", table_len, " blocks covers ",
                table_len * cache.block_size, " positions, ", start + n, " needed");
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(cache.kv_heads));
  write_kv_kernel<T><<<grid, 64, 0, stream>>>(cache, block_table, start, k, k_stride, v, v_stride);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void write_kv(const DeviceKvCache<float>& cache, const int32_t* block_table, int64_t table_len, int64_t start,
              int64_t n, const float* k, int64_t k_token_stride, const float* v, int64_t v_token_stride,
              cudaStream_t stream) {
  launch(cache, block_table, table_len, start, n, k, k_token_stride, v, v_token_stride, stream);
}
void write_kv(const DeviceKvCache<__nv_bfloat16>& cache, const int32_t* block_table, int64_t table_len, int64_t start,
              int64_t n, const __nv_bfloat16* k, int64_t k_token_stride, const __nv_bfloat16* v,
              int64_t v_token_stride, cudaStream_t stream) {
  launch(cache, block_table, table_len, start, n, k, k_token_stride, v, v_token_stride, stream);
}

}  // namespace tessera::kernels::cuda
