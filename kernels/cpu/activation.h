#pragma once
// SiLU-and-multiply on the CPU: out[t, i] = silu(gate_up[t, i]) * gate_up[t, ffn + i].
// gate_up holds the fused gate and up projections of `tokens` rows, each 2 * ffn wide.
#include <cstdint>

namespace tessera::kernels::cpu {

void silu_and_mul(const float* gate_up, float* out, int64_t tokens, int64_t ffn);

// out[i] = silu(gate[i]) * up[i] for separate gate and up buffers.
void silu_mul(const float* gate, const float* up, float* out, int64_t count);

}  // namespace tessera::kernels::cpu
