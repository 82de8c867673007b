// cuBLASLt GEMM against the CPU GEMM (OpenBLAS) on the same bf16-exact inputs, odd shapes included.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "tests/support/gpu_test_support.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cuda {
namespace {

using testing_support::DeviceBuffer;
using testing_support::nv;

struct Problem {
  int64_t m, n, k;
  std::vector<float> x, w, reference, magnitude;  // magnitude[i, j] = sum_k |x||w|, for the tolerance
};

Problem make_problem(int64_t m, int64_t n, int64_t k, uint32_t seed) {
  const auto x = testing_support::bf16_exact(testing_support::random_floats(static_cast<size_t>(m * k), seed));
  const auto w = testing_support::bf16_exact(testing_support::random_floats(static_cast<size_t>(n * k), seed + 1));
  std::vector<float> reference(static_cast<size_t>(m * n));
  cpu::matmul_transposed(x.data(), w.data(), reference.data(), m, n, k);
  std::vector<float> magnitude(reference.size());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t l = 0; l < k; ++l) s += std::fabs(static_cast<double>(x[i * k + l]) * static_cast<double>(w[j * k + l]));
      magnitude[static_cast<size_t>(i * n + j)] = static_cast<float>(s);
    }
  }
  return Problem{m, n, k, x, w, std::move(reference), std::move(magnitude)};
}

const std::vector<std::tuple<int64_t, int64_t, int64_t>> kShapes = {
    {1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {1, 576, 576}, {7, 1536, 576}, {64, 192, 1536}, {2, 4099, 63}};

TEST(CublasLtGemm, Bf16InF32OutMatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  CublasLtGemm gemm;
  uint32_t seed = 10;
  for (const auto& [m, n, k] : kShapes) {
    const Problem p = make_problem(m, n, k, seed += 2);
    DeviceBuffer<bf16> x(testing_support::to_bf16(p.x));
    DeviceBuffer<bf16> w(testing_support::to_bf16(p.w));
    DeviceBuffer<float> y(p.reference.size());
    gemm.matmul_transposed(nv(x.get()), nv(w.get()), y.get(), m, n, k, nullptr);
    const std::vector<float> got = y.download();
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], p.reference[i], 1e-5f * p.magnitude[i] + 1e-6f) << m << "x" << n << "x" << k << " i=" << i;
    }
  }
}

TEST(CublasLtGemm, Bf16OutIsTheRoundedProduct) {
  TESSERA_REQUIRE_GPUS(1);
  CublasLtGemm gemm;
  const Problem p = make_problem(9, 257, 130, 77);
  DeviceBuffer<bf16> x(testing_support::to_bf16(p.x));
  DeviceBuffer<bf16> w(testing_support::to_bf16(p.w));
  DeviceBuffer<bf16> y(p.reference.size());
  gemm.matmul_transposed(nv(x.get()), nv(w.get()), nv(y.get()), p.m, p.n, p.k, nullptr);
  const std::vector<float> got = testing_support::to_f32(y.download());
  for (size_t i = 0; i < got.size(); ++i) {
    // One bf16 rounding (relative 2^-8) on top of the f32 accumulation-order difference.
    ASSERT_NEAR(got[i], p.reference[i], std::fabs(p.reference[i]) * 0.0040f + 1e-5f * p.magnitude[i] + 1e-6f)
        << "i=" << i;
  }
}

TEST(CublasLtGemm, F32AndAccumulateMatchCpu) {
  TESSERA_REQUIRE_GPUS(1);
  CublasLtGemm gemm;
  const int64_t m = 5, n = 67, k = 129;
  const std::vector<float> x = testing_support::random_floats(m * k, 5);
  const std::vector<float> w = testing_support::random_floats(n * k, 6);
  std::vector<float> y0 = testing_support::random_floats(m * n, 7);
  std::vector<float> expected = y0;
  cpu::matmul_transposed_accumulate(x.data(), w.data(), expected.data(), m, n, k);
  DeviceBuffer<float> dx(x), dw(w), dy(y0);
  gemm.matmul_transposed(dx.get(), dw.get(), dy.get(), m, n, k, GemmType::kF32, GemmType::kF32, nullptr, true);
  const std::vector<float> got = dy.download();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], expected[i], 2e-5f * static_cast<float>(k)) << i;
}

TEST(CublasLtGemm, CachesOnePlanPerShapeAndHandlesEmptySums) {
  TESSERA_REQUIRE_GPUS(1);
  CublasLtGemm gemm;
  DeviceBuffer<float> x(4 * 8), w(3 * 8), y(4 * 3);
  x.upload(std::vector<float>(32, 1.0f));
  w.upload(std::vector<float>(24, 0.5f));
  for (int i = 0; i < 3; ++i) gemm.matmul_transposed(x.get(), w.get(), y.get(), 4, 3, 8, nullptr);
  EXPECT_EQ(gemm.cached_plans(), 1u);
  for (float v : y.download()) EXPECT_EQ(v, 4.0f);
  gemm.matmul_transposed(x.get(), w.get(), y.get(), 4, 3, 0, nullptr);  // k == 0: y = 0
  for (float v : y.download()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(gemm.cached_plans(), 1u);
}

}  // namespace
}  // namespace tessera::kernels::cuda
