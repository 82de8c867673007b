#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/activation.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cpu {
namespace {

using testing_support::random_vector;

double silu(double x) { return x / (1.0 + std::exp(-x)); }

TEST(Activation, SiluMulMatchesReferenceIncludingExtremes) {
  auto gate = random_vector(101, 1, 20.0f);
  gate.push_back(-100.0f);  // exp(100) overflows f32 to inf: silu -> -0
  gate.push_back(100.0f);
  gate.push_back(0.0f);
  const auto up = random_vector(static_cast<int64_t>(gate.size()), 2, 3.0f);
  std::vector<float> out(gate.size());
  silu_mul(gate.data(), up.data(), out.data(), static_cast<int64_t>(gate.size()));
  for (size_t i = 0; i < gate.size(); ++i) {
    const double want = silu(static_cast<double>(gate[i])) * static_cast<double>(up[i]);
    ASSERT_NEAR(out[i], want, 1e-6 * std::fabs(want) + 1e-30) << "gate " << gate[i];
  }
}

TEST(Activation, SiluAndMulReadsFusedGateUpRows) {
  const int64_t tokens = 3, ffn = 37;
  const auto gate_up = random_vector(tokens * 2 * ffn, 3, 5.0f);
  std::vector<float> out(static_cast<size_t>(tokens * ffn));
  silu_and_mul(gate_up.data(), out.data(), tokens, ffn);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < ffn; ++i) {
      const double g = gate_up[static_cast<size_t>(t * 2 * ffn + i)];
      const double u = gate_up[static_cast<size_t>(t * 2 * ffn + ffn + i)];
      ASSERT_NEAR(out[static_cast<size_t>(t * ffn + i)], silu(g) * u, 1e-6 * std::fabs(silu(g) * u) + 1e-12);
    }
  }
}

}  // namespace
}  // namespace tessera::kernels::cpu
