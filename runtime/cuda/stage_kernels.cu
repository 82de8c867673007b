#include "kernels/cuda/cuda_check.h"
#include "runtime/cuda/stage_kernels.h"

namespace tessera::runtime::cuda {
namespace {

using kernels::cuda::DeviceKvCache;

__global__ void write_kv_slots_kernel(DeviceKvCache<__nv_bfloat16> cache, const int32_t* __restrict__ slots,
                                      const __nv_bfloat16* __restrict__ k, int64_t k_stride,
                                      const __nv_bfloat16* __restrict__ v, int64_t v_stride) {
  const int64_t token = blockIdx.x;
  const int64_t slot = slots[token];
  if (slot < 0 || slot >= cache.num_blocks * cache.block_size) return;  // padding, or an id a kernel cannot report
  const int64_t width = cache.kv_heads * cache.head_dim;
  const __nv_bfloat16* k_src = k + token * k_stride;
  const __nv_bfloat16* v_src = v + token * v_stride;
  __nv_bfloat16* k_dst = cache.k + slot * width;  // [block, offset] flattened: slot rows of kv_heads * head_dim
  __nv_bfloat16* v_dst = cache.v + slot * width;
  for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
    k_dst[i] = k_src[i];
    v_dst[i] = v_src[i];
  }
}

__global__ void add_bias_rows_kernel(__nv_bfloat16* __restrict__ y, const __nv_bfloat16* __restrict__ bias,
                                     int64_t cols) {
  __nv_bfloat16* row = y + blockIdx.x * cols;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    row[i] = __float2bfloat16_rn(__bfloat162float(row[i]) + __bfloat162float(bias[i]));
  }
}

}  // namespace

void write_kv_slots(const DeviceKvCache<__nv_bfloat16>& cache, const int32_t* slots, int64_t tokens,
                    const __nv_bfloat16* k, int64_t k_stride, const __nv_bfloat16* v, int64_t v_stride,
                    cudaStream_t stream) {
  TESSERA_CHECK(tokens >= 0 && tokens <= INT32_MAX, "write_kv_slots: bad token count ", tokens);
  TESSERA_CHECK(k_stride >= cache.kv_heads * cache.head_dim && v_stride >= cache.kv_heads * cache.head_dim,
                "write_kv_slots: token strides ", k_stride, "/", v_stride, " below kv_heads * head_dim = ",
                cache.kv_heads * cache.head_dim);
  if (tokens == 0) return;
  write_kv_slots_kernel<<<static_cast<unsigned>(tokens), 128, 0, stream>>>(cache, slots, k, k_stride, v, v_stride);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

void add_bias_rows(__nv_bfloat16* y, const __nv_bfloat16* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  TESSERA_CHECK(rows >= 0 && rows <= INT32_MAX && cols >= 0, "add_bias_rows: bad shape ", rows, " x ", cols);
  if (rows == 0 || cols == 0) return;
  add_bias_rows_kernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(y, bias, cols);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace tessera::runtime::cuda
