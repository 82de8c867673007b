#pragma once
// Matrix products on ggml blocks with the activations quantized to 8 bits, as llama.cpp computes them: each block of
// 32 values of a row of x becomes 32 int8 q = round(x / d), d = max|x| / 127 (llama.cpp's Q8_1), and each block dot
// product is an integer one (AVX2 vpmaddubsw / vpmaddwd), scaled by the two blocks' scales:
//   Q4_1: sum (dw qw + mw) (dx qx) = dw dx sum qw qx + mw dx sum qx      Q4_0: the same with mw = -8 dw
//   Q8_0: dw dx sum qw qx
// Lossy (the activation rounding: ~0.4% of a block's largest value), so it is opt-in: --cpu-activations int8 or
// TESSERA_CPU_ACTIVATIONS=int8 (default f32). Where it pays: small batches, where the f32 kernels are bound by the
// instructions that widen the weights (an integer block dot is about half of them: ~2x at batch 1); from ~16 rows of
// x on the f32 kernels' buffered path does fewer operations per weight and multiply (level at 64 rows).
// Batch invariant like the f32 kernels: a row's quantization and every output's sequence of operations depend on
// nothing but that row and that weight row.
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/dequant.h"

namespace tessera::kernels::cpu::packed {

// Q4_0, Q4_1 and Q8_0; the other formats keep f32 activations.
bool block_int8_supported(QuantFormat format);

// As block_gemv_avx2 (block_gemv.h), with x quantized per block of 32 inside the call. Requires AVX2 and
// block_int8_supported(format).
void block_gemv_int8_avx2(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                          float* y, int64_t y_stride);
// The same kernel with AVX-512 VNNI's vpdpbusd (on 256-bit vectors) as its block dot: one instruction where AVX2 takes
// two. Bit for bit the results of block_gemv_int8_avx2 (block_gemv_int8_x86.h says why). Requires
// cpu_has_avx512_vnni() and block_int8_supported(format).
void block_gemv_int8_vnni(QuantFormat format, const std::byte* w, int64_t rows, int64_t k, const float* x, int64_t m,
                          float* y, int64_t y_stride);
// AVX-512 VNNI and VL (and the AVX2, FMA and F16C the kernel also uses).
bool cpu_has_avx512_vnni();

namespace detail {
// Per-row block fields are padded to whole runs of 8 blocks (zeros), so the 8-block steps of the tiles never read
// another row's fields. (Plain code, outside the target regions: the kernels and the scratch's sizing share it.)
constexpr int64_t padded_blocks(int64_t blocks) { return (blocks + 7) / 8 * 8; }

// A calling thread's scratch for the quantized rows of x (m rows of `blocks` blocks), reused across calls: the
// layout is block_gemv_int8_x86.h's.
struct Int8Scratch {
  int8_t* q;
  float* fields;
};
Int8Scratch int8_scratch(int64_t m, int64_t blocks);
}  // namespace detail

}  // namespace tessera::kernels::cpu::packed
