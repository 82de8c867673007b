#pragma once
// Matrix-vector products on weight rows kept in ggml's block formats (PackedMatrix's native format): the inner
// loops of the decode path. Each weight is decoded to the very f32 value dequantize() gives (bit for bit: checked
// by tests/kernels/test_block_gemv.cpp), then multiplied with f32 activations; against f32 weights only the order of
// the f32 summation differs.
//
// Three builds, as in packed_dot.h: portable scalar code (every format: dequantize() a row, then dot it), and
// AVX2+FMA / AVX-512 code for the formats with a vector decoder (block_simd_supported), chosen at run time by
// the caller; the vector builds need F16C too (the block scales are fp16).
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/dequant.h"

namespace tessera::kernels::cpu::packed {

bool cpu_has_f16c();
// Q4_0, Q4_1, Q8_0, Q4_K and Q6_K: the formats the vector builds decode themselves.
bool block_simd_supported(QuantFormat format);

// y[i * y_stride + r] += sum_c x[i * k + c] * w(r, c) for i < m (any m >= 1) and r < rows.
// w holds `rows` rows of k elements in `format`, each quantized_bytes(format, k) bytes, one after the other;
// x is [m, k] row-major. The vector builds require block_simd_supported(format).
// Batch invariance: within one build, y[i, r] is computed by the same operations in the same order whatever m is
// and wherever row i sits in x (the kernels tile rows of x and w to reuse each decoded weight across up to 8 rows of
// x, but never change an output's summation), so a row's result does not depend on the rows that share the call.
// The builds differ from each other in their summation order (scalar: 4 chains; AVX2 and AVX-512: 8 and 16 lanes).
void block_gemv_scalar(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                       float* y, int64_t y_stride);
void block_gemv_avx2(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                     float* y, int64_t y_stride);
void block_gemv_avx512(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                       float* y, int64_t y_stride);

// out[0, count) = dequantize(format, w, count) bit for bit, with vector code (count whole blocks; the prefill path
// widens weight tiles with it). Require block_simd_supported(format).
void block_decode_avx2(QuantFormat format, const std::byte* w, int64_t count, float* out);
void block_decode_avx512(QuantFormat format, const std::byte* w, int64_t count, float* out);

}  // namespace tessera::kernels::cpu::packed
