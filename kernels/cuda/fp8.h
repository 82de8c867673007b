#pragma once
// FP8 (e4m3) tensors for the FP8 GEMM path of Hopper and Ada (compute capability 8.9+): values stored as e4m3
// with one f32 scale per tensor (value = e4m3 * scale), the scale chosen from the tensor's absolute maximum so
// that it maps to e4m3's largest finite value, 448. Weights are quantised once at load; activations per call.
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace tessera::kernels::cuda {

inline constexpr float kFp8E4m3Max = 448.0f;

// out[i] = saturate(in[i] / scale) in e4m3 (round to nearest even), with *scale (device) = amax / 448, or 1
// when the tensor is all zeros. `amax_scratch` is one device float, overwritten.
void quantize_fp8_e4m3(const __nv_bfloat16* in, size_t count, __nv_fp8_e4m3* out, float* scale, float* amax_scratch,
                       cudaStream_t stream);
void quantize_fp8_e4m3(const float* in, size_t count, __nv_fp8_e4m3* out, float* scale, float* amax_scratch,
                       cudaStream_t stream);

// Whether the current device runs cuBLASLt's FP8 GEMMs (compute capability 8.9 or newer).
bool device_supports_fp8();

}  // namespace tessera::kernels::cuda
