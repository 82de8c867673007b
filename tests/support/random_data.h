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

// Uniform in [-scale, scale): the usual kernel-test input (same values as random_floats(n, seed, -scale, scale)).
inline std::vector<float> random_vector(int64_t n, uint32_t seed, float scale = 1.0f) {
  return random_floats(static_cast<size_t>(n), seed, -scale, scale);
}

// Normally distributed around 0 (logits, weights): unlike uniform values these have a few large outliers.
inline std::vector<float> random_normal(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 engine(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> values(static_cast<size_t>(n));
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
