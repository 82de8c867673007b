#pragma once
// SiLU-and-multiply on the CPU: out[t, i] = silu(gate_up[t, i]) * gate_up[t, ffn + i].
// gate_up holds the fused gate and up projections of `tokens` rows, each 2 * ffn wide.
// Two builds, chosen from the process's packed-kernel ISA (packed_isa(): cpuid, or TESSERA_CPU_ISA): portable code
// with std::exp, and AVX2+FMA with an 8-lane exp within 2 ulp of it (vector_exp_avx2.h). Element-wise, so either is
// batch invariant; the two differ from each other in the last bits.
#include <cstdint>

namespace tessera::kernels::cpu {

void silu_and_mul(const float* gate_up, float* out, int64_t tokens, int64_t ffn);

// out[i] = silu(gate[i]) * up[i] for separate gate and up buffers.
void silu_mul(const float* gate, const float* up, float* out, int64_t count);

namespace detail {
// The two builds behind silu_mul (exposed for their tests). silu_mul_avx2 requires AVX2 and FMA.
void silu_mul_portable(const float* gate, const float* up, float* out, int64_t count);
void silu_mul_avx2(const float* gate, const float* up, float* out, int64_t count);
}  // namespace detail

}  // namespace tessera::kernels::cpu
