#pragma once
// SiLU-and-multiply on the GPU: out[t, i] = silu(gate_up[t, i]) * gate_up[t, ffn + i], the fused gate/up
// projection's output split in halves. f32 math whatever the storage type.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace tessera::kernels::cuda {

void silu_and_mul(const __nv_bfloat16* gate_up, __nv_bfloat16* out, int tokens, int ffn, cudaStream_t stream);
void silu_and_mul(const float* gate_up, float* out, int tokens, int ffn, cudaStream_t stream);

}  // namespace tessera::kernels::cuda
