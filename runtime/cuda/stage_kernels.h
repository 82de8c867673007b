#pragma once
// Two small kernels the CUDA stage needs beyond kernels/cuda, both shaped by how a whole engine step runs at once:
//  - write_kv_slots: every token of the batch into the paged KV cache in one launch, each at a precomputed slot
//    (block * block_size + offset; negative: skip). A host `start` per sequence (kernels/cuda/kv_cache.h) cannot
//    be captured in a CUDA graph whose positions change every step; a device slot array can.
//  - add_bias_rows: the QKV bias of Qwen2-style models (y[r, :] += bias).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/kv_cache.h"

namespace tessera::runtime::cuda {

// k, v: [tokens, kv_heads, head_dim] rows k_stride / v_stride elements apart; slots: [tokens] device.
void write_kv_slots(const kernels::cuda::DeviceKvCache<__nv_bfloat16>& cache, const int32_t* slots, int64_t tokens,
                    const __nv_bfloat16* k, int64_t k_stride, const __nv_bfloat16* v, int64_t v_stride,
                    cudaStream_t stream);

// y: [rows, cols] row-major; bias: [cols]. f32 addition, one rounding.
void add_bias_rows(__nv_bfloat16* y, const __nv_bfloat16* bias, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace tessera::runtime::cuda
