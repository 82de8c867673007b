#pragma once
// Decoding of ggml's block-quantized formats on the GPU, bit-exact with the CPU twin (kernels/cpu/dequant.h,
// itself bit-exact with ggml): the same f32 operations in the same order, each rounded separately (no fused
// multiply-add). Weights are uploaded as stored in the GGUF file and expanded on the device.
// Formats: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K (Q2_K and Q3_K: not yet).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/dequant.h"

namespace tessera::kernels::cuda {

bool dequantize_supported(cpu::QuantFormat format);

// Decodes `count` elements (whole blocks) from the device bytes src[0, src_bytes) into out[0, count).
// Throws tessera::Error for an unsupported format, a count that is not whole blocks, or too few bytes.
void dequantize(cpu::QuantFormat format, const void* src, size_t src_bytes, int64_t count, float* out,
                cudaStream_t stream);
void dequantize(cpu::QuantFormat format, const void* src, size_t src_bytes, int64_t count, __nv_bfloat16* out,
                cudaStream_t stream);

}  // namespace tessera::kernels::cuda
