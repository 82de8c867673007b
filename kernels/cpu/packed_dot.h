#pragma once
// Dot products of an f32 vector with one packed weight row (bf16, or int8 blocks of 32 with f32 scales): the
// inner loops of PackedMatrix. Three builds of each: portable scalar code, AVX2+FMA and AVX-512 code compiled
// with target attributes (no global -march flag), each to be called only when the cpu_has_* check says so.
#include <cstdint>

namespace tessera::kernels::cpu::packed {

bool cpu_has_avx2_fma();
bool cpu_has_avx512();  // AVX-512 F and BW

// sum_i x[i] * bf16(w[i]), k any length.
float dot_bf16_scalar(const float* x, const uint16_t* w, int64_t k);
float dot_bf16_avx2(const float* x, const uint16_t* w, int64_t k);
float dot_bf16_avx512(const float* x, const uint16_t* w, int64_t k);

// sum_b scale[b] * sum_{i in block b} x[i] * q[i], k a multiple of 32.
float dot_q8_scalar(const float* x, const int8_t* q, const float* scale, int64_t k);
float dot_q8_avx2(const float* x, const int8_t* q, const float* scale, int64_t k);
float dot_q8_avx512(const float* x, const int8_t* q, const float* scale, int64_t k);

}  // namespace tessera::kernels::cpu::packed
