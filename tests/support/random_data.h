#pragma once
// Seeded random inputs for kernel tests: the same values on every run and every machine.
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/base/half.h"

namespace tessera::testing_support {

inline std::vector<float> random_floats(size_t count, uint32_t seed, float low = -1.0f, float high = 1.0f) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> values(count);
  for (auto& v : values) v = dist(engine);
  return values;
}

inline std::vector<bf16> to_bf16(const std::vector<float>& values) {
  std::vector<bf16> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = float_to_bf16(values[i]);
  return out;
}

inline std::vector<float> to_f32(const std::vector<bf16>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = bf16_to_float(values[i]);
  return out;
}

// Values made exactly representable in bf16, so that CPU (f32) and GPU (bf16 storage) see the same inputs.
inline std::vector<float> bf16_exact(std::vector<float> values) {
  for (auto& v : values) v = bf16_to_float(float_to_bf16(v));
  return values;
}

}  // namespace tessera::testing_support
