#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/packed_matrix.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cpu {
namespace {

using testing_support::random_vector;

double silu(double x) { return x / (1.0 + std::exp(-x)); }

// A build of silu_mul and the lowest packed ISA that selects it.
struct SiluBuild {
  const char* name;
  void (*run)(const float*, const float*, float*, int64_t);
  PackedIsa isa;
};

// The builds this CPU runs.
std::vector<SiluBuild> builds() {
  std::vector<SiluBuild> b = {{"portable", detail::silu_mul_portable, PackedIsa::kScalar}};
  if (best_packed_isa() >= PackedIsa::kAvx2) b.push_back({"avx2", detail::silu_mul_avx2, PackedIsa::kAvx2});
  return b;
}

// Gates over SiLU's whole range, the extremes included, `count` of them.
std::vector<float> gates(int64_t count) {
  auto gate = random_vector(count, 1, 20.0f);
  const float extremes[] = {-100.0f, 100.0f, 0.0f, -88.5f, 87.5f, -1e30f, 1e30f};
  for (size_t i = 0; i < std::size(extremes) && i < gate.size(); ++i) gate[i * 5 % gate.size()] = extremes[i];
  return gate;
}

TEST(Activation, SiluMulMatchesReferenceIncludingExtremesInEveryBuild) {
  // Lengths with every tail 0..7 of the AVX2 build's masked last group. Below -88 the true value is under 1e-36 in
  // magnitude: the portable build gives -0 (e^-g overflows to inf), the AVX2 one 0; both are within the absolute
  // 1e-30.
  for (const auto& [name, build, isa] : builds()) {
    for (const int64_t count : {1, 2, 3, 4, 5, 6, 7, 8, 13, 64, 103, 1536}) {
      const auto gate = gates(count);
      const auto up = random_vector(count, 2, 3.0f);
      std::vector<float> out(static_cast<size_t>(count) + 8, 12345.0f);  // past the end: must stay untouched
      build(gate.data(), up.data(), out.data(), count);
      for (int64_t i = 0; i < count; ++i) {
        const double want = silu(static_cast<double>(gate[i])) * static_cast<double>(up[i]);
        ASSERT_NEAR(out[i], want, 1e-6 * std::fabs(want) + 1e-30)
            << name << ": gate " << gate[i] << ", count " << count;
      }
      for (size_t i = static_cast<size_t>(count); i < out.size(); ++i) {
        ASSERT_EQ(out[i], 12345.0f) << name << " wrote past the end";
      }
    }
  }
}

TEST(Activation, SiluMulTakesTheBuildOfThePackedIsa) {
  // silu_mul and silu_and_mul run the portable build below AVX2 and the AVX2 build from it on (packed_isa(), which
  // TESSERA_CPU_ISA caps: a build above the cap cannot be selected, and is skipped like one the CPU lacks): bit for
  // bit each build's own output.
  const int64_t count = 1536 + 5;
  const auto gate = gates(count);
  const auto up = random_vector(count, 2, 3.0f);
  std::vector<float> fused(static_cast<size_t>(2 * count));
  std::copy(gate.begin(), gate.end(), fused.begin());
  std::copy(up.begin(), up.end(), fused.begin() + count);
  const PackedIsa cap = forced_packed_isa(std::getenv("TESSERA_CPU_ISA"));
  const PackedIsa previous = set_packed_isa_limit(PackedIsa::kAvx512);
  size_t checked = 0;
  for (const auto& [name, build, isa] : builds()) {
    if (isa > cap) continue;
    set_packed_isa_limit(isa);
    ++checked;
    std::vector<float> want(static_cast<size_t>(count)), got(want.size()), got_fused(want.size());
    build(gate.data(), up.data(), want.data(), count);
    silu_mul(gate.data(), up.data(), got.data(), count);
    silu_and_mul(fused.data(), got_fused.data(), 1, count);
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0) << name;
    EXPECT_EQ(std::memcmp(want.data(), got_fused.data(), want.size() * sizeof(float)), 0) << name;
  }
  set_packed_isa_limit(previous);
  if (checked < 2) GTEST_SKIP() << "no AVX2 here (CPU or TESSERA_CPU_ISA): only the portable build was checked";
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
