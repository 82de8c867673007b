#pragma once
// Dot products of an f32 vector with one packed weight row (bf16, or int8 blocks of 32 with f32 scales): the
// inner loops of PackedMatrix. Two builds of each: portable scalar code, and AVX2+FMA code compiled with a
// target attribute (no global -march flag), to be called only when cpu_has_avx2_fma() says so.
#include <cstdint>

namespace tessera::kernels::cpu::packed {

bool cpu_has_avx2_fma();

// sum_i x[i] * bf16(w[i]), k any length.
float dot_bf16_scalar(const float* x, const uint16_t* w, int64_t k);
float dot_bf16_avx2(const float* x, const uint16_t* w, int64_t k);

// sum_b scale[b] * sum_{i in block b} x[i] * q[i], k a multiple of 32.
float dot_q8_scalar(const float* x, const int8_t* q, const float* scale, int64_t k);
float dot_q8_avx2(const float* x, const int8_t* q, const float* scale, int64_t k);

}  // namespace tessera::kernels::cpu::packed
