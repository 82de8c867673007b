#include "kernels/cpu/activation.h"

#include <cmath>

#include "kernels/cpu/packed_matrix.h"

namespace tessera::kernels::cpu {
namespace {

using SiluMul = void (*)(const float*, const float*, float*, int64_t);

SiluMul silu_mul_build() {
  return packed_isa() >= PackedIsa::kAvx2 ? detail::silu_mul_avx2 : detail::silu_mul_portable;
}

}  // namespace

namespace detail {

void silu_mul_portable(const float* gate, const float* up, float* out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace detail

void silu_mul(const float* gate, const float* up, float* out, int64_t count) { silu_mul_build()(gate, up, out, count); }

void silu_and_mul(const float* gate_up, float* out, int64_t tokens, int64_t ffn) {
  const SiluMul build = silu_mul_build();  // once per call, not per row
  for (int64_t t = 0; t < tokens; ++t) build(gate_up + t * 2 * ffn, gate_up + t * 2 * ffn + ffn, out + t * ffn, ffn);
}

}  // namespace tessera::kernels::cpu
