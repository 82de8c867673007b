#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dequant.h"
#include "kernels/cuda/device_math.cuh"

namespace tessera::kernels::cuda {
namespace {

using cpu::QuantFormat;

__device__ __forceinline__ float load_f16(const uint8_t* p) {
  const unsigned short bits = static_cast<unsigned short>(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(bits));
}
__device__ __forceinline__ uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }

// ggml's get_scale_min_k4 for sub-block j of a Q4_K/Q5_K super-block.
__device__ __forceinline__ void scale_min_k4(int j, const uint8_t* s, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 0x3F;
    mn = s[j + 4] & 0x3F;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30);
    mn = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
  }
}

// Element j of one block at b. Every formula mirrors kernels/cpu/dequant.cpp operation for operation.
template <QuantFormat kFormat>
__device__ float decode(const uint8_t* b, int j) {
  if constexpr (kFormat == QuantFormat::kF32) {
    return __uint_as_float(load_u32(b));
  } else if constexpr (kFormat == QuantFormat::kF16) {
    return load_f16(b);
  } else if constexpr (kFormat == QuantFormat::kBF16) {
    return __uint_as_float(static_cast<uint32_t>(b[0] | (b[1] << 8)) << 16);
  } else if constexpr (kFormat == QuantFormat::kQ4_0) {
    const uint8_t byte = b[2 + (j % 16)];
    const int q = (j < 16 ? (byte & 0x0F) : (byte >> 4)) - 8;
    return mul(load_f16(b), static_cast<float>(q));
  } else if constexpr (kFormat == QuantFormat::kQ4_1) {
    const uint8_t byte = b[4 + (j % 16)];
    const int q = j < 16 ? (byte & 0x0F) : (byte >> 4);
    return __fadd_rn(mul(load_f16(b), static_cast<float>(q)), load_f16(b + 2));
  } else if constexpr (kFormat == QuantFormat::kQ5_0) {
    const uint32_t qh = load_u32(b + 2);
    const uint8_t byte = b[6 + (j % 16)];
    const int q = j < 16 ? ((byte & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4))
                         : ((byte >> 4) | static_cast<int>(((qh >> j) & 1u) << 4));
    return mul(load_f16(b), static_cast<float>(q - 16));
  } else if constexpr (kFormat == QuantFormat::kQ5_1) {
    const uint32_t qh = load_u32(b + 4);
    const uint8_t byte = b[8 + (j % 16)];
    const int q = j < 16 ? ((byte & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4))
                         : ((byte >> 4) | static_cast<int>(((qh >> j) & 1u) << 4));
    return __fadd_rn(mul(load_f16(b), static_cast<float>(q)), load_f16(b + 2));
  } else if constexpr (kFormat == QuantFormat::kQ8_0) {
    return mul(static_cast<float>(static_cast<int8_t>(b[2 + j])), load_f16(b));
  } else if constexpr (kFormat == QuantFormat::kQ4_K || kFormat == QuantFormat::kQ5_K) {
    const int group = j / 32;
    const int l = j % 32;
    int sc = 0;
    int mn = 0;
    scale_min_k4(group, b + 4, sc, mn);
    const float dg = mul(load_f16(b), static_cast<float>(sc));
    const float mg = mul(load_f16(b + 2), static_cast<float>(mn));
    const int shift = 4 * (group % 2);
    int value;
    if constexpr (kFormat == QuantFormat::kQ4_K) {
      value = (b[16 + (group / 2) * 32 + l] >> shift) & 0x0F;
    } else {
      value = ((b[48 + (group / 2) * 32 + l] >> shift) & 0x0F) | (((b[16 + l] >> group) & 1) << 4);
    }
    return __fsub_rn(mul(dg, static_cast<float>(value)), mg);
  } else {  // Q6_K
    static_assert(kFormat == QuantFormat::kQ6_K);
    const int half = j / 128;
    const int quarter = (j % 128) / 32;
    const int l = j % 32;
    const uint8_t* l4 = b + half * 64;
    const uint8_t h2 = b[128 + half * 32 + l];
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192) + half * 8;
    const uint8_t low_byte = l4[l + (quarter % 2) * 32];
    const int low = quarter < 2 ? (low_byte & 0x0F) : (low_byte >> 4);
    const int q = (low | (((h2 >> (2 * quarter)) & 3) << 4)) - 32;
    return mul(mul(load_f16(b + 208), static_cast<float>(sc[l / 16 + 2 * quarter])), static_cast<float>(q));
  }
}

template <QuantFormat kFormat, class OutT>
__global__ void dequant_kernel(const uint8_t* __restrict__ src, int64_t count, int64_t block_elements,
                               int64_t block_bytes, OutT* __restrict__ out) {
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < count; e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t block = e / block_elements;
    const int j = static_cast<int>(e % block_elements);
    out[e] = detail::from_f32<OutT>(decode<kFormat>(src + block * block_bytes, j));
  }
}

template <class OutT>
void launch(QuantFormat format, const void* src, size_t src_bytes, int64_t count, OutT* out, cudaStream_t stream) {
  TESSERA_CHECK(dequantize_supported(format), "dequantize (CUDA): format ", cpu::quant_format_name(format),
                " is not supported on the GPU yet");
  const int64_t needed = cpu::quantized_bytes(format, count);  // throws on partial blocks
  TESSERA_CHECK(static_cast<uint64_t>(needed) <= src_bytes, "dequantize (CUDA): ", count, " ",
                cpu::quant_format_name(format), " elements need ", needed, " bytes, got ", src_bytes);
  if (count == 0) return;
  const cpu::QuantLayout layout = cpu::quant_layout(format);
  const auto* bytes = static_cast<const uint8_t*>(src);
  constexpr int kThreads = 256;
  const int64_t wanted_blocks = (count + kThreads - 1) / kThreads;
  const unsigned grid = static_cast<unsigned>(wanted_blocks < 65535 * 16 ? wanted_blocks : 65535 * 16);
  const auto run = [&](auto kernel) {
    kernel<<<grid, kThreads, 0, stream>>>(bytes, count, layout.block_elements, layout.block_bytes, out);
  };
  switch (format) {
    case QuantFormat::kF32: run(dequant_kernel<QuantFormat::kF32, OutT>); break;
    case QuantFormat::kF16: run(dequant_kernel<QuantFormat::kF16, OutT>); break;
    case QuantFormat::kBF16: run(dequant_kernel<QuantFormat::kBF16, OutT>); break;
    case QuantFormat::kQ4_0: run(dequant_kernel<QuantFormat::kQ4_0, OutT>); break;
    case QuantFormat::kQ4_1: run(dequant_kernel<QuantFormat::kQ4_1, OutT>); break;
    case QuantFormat::kQ5_0: run(dequant_kernel<QuantFormat::kQ5_0, OutT>); break;
    case QuantFormat::kQ5_1: run(dequant_kernel<QuantFormat::kQ5_1, OutT>); break;
    case QuantFormat::kQ8_0: run(dequant_kernel<QuantFormat::kQ8_0, OutT>); break;
    case QuantFormat::kQ4_K: run(dequant_kernel<QuantFormat::kQ4_K, OutT>); break;
    case QuantFormat::kQ5_K: run(dequant_kernel<QuantFormat::kQ5_K, OutT>); break;
    case QuantFormat::kQ6_K: run(dequant_kernel<QuantFormat::kQ6_K, OutT>); break;
    default: fail("dequantize (CUDA): unhandled format ", cpu::quant_format_name(format));
  }
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

bool dequantize_supported(QuantFormat format) { return format != QuantFormat::kQ2_K && format != QuantFormat::kQ3_K; }

void dequantize(QuantFormat format, const void* src, size_t src_bytes, int64_t count, float* out,
                cudaStream_t stream) {
  launch(format, src, src_bytes, count, out, stream);
}
void dequantize(QuantFormat format, const void* src, size_t src_bytes, int64_t count, __nv_bfloat16* out,
                cudaStream_t stream) {
  launch(format, src, src_bytes, count, out, stream);
}

}  // namespace tessera::kernels::cuda
