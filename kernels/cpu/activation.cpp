#include "kernels/cpu/activation.h"

#include <cmath>

namespace tessera::kernels::cpu {

void silu_mul(const float* gate, const float* up, float* out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void silu_and_mul(const float* gate_up, float* out, int64_t tokens, int64_t ffn) {
  for (int64_t t = 0; t < tokens; ++t) {
    silu_mul(gate_up + t * 2 * ffn, gate_up + t * 2 * ffn + ffn, out + t * ffn, ffn);
  }
}

}  // namespace tessera::kernels::cpu
