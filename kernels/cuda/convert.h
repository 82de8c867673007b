#pragma once
// Element-type conversions on the GPU (bf16 <-> f32), round to nearest even like tessera::float_to_bf16.
// Used where f32 accumulation is wanted around bf16 storage (bf16 all-reduce, staging).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace tessera::kernels::cuda {

void bf16_to_f32(const __nv_bfloat16* in, float* out, size_t count, cudaStream_t stream);
void f32_to_bf16(const float* in, __nv_bfloat16* out, size_t count, cudaStream_t stream);

}  // namespace tessera::kernels::cuda
