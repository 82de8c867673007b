// RoPE on the GPU against the CPU twin: both layouts, llama3 and linear scaling, fused-QKV strides; f32 results
// are bit-identical (same table, no fused multiply-add).
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cpu/rope.h"
#include "kernels/cuda/rope.h"
#include "tests/support/gpu_test_support.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cuda {
namespace {

using testing_support::DeviceBuffer;
using testing_support::nv;

cpu::RopeConfig llama3_config() {
  cpu::RopeConfig config;
  config.head_dim = 64;
  config.theta = 500000.0f;
  config.scaling = cpu::RopeScalingKind::kLlama3;
  config.factor = 8.0f;
  config.low_freq_factor = 1.0f;
  config.high_freq_factor = 4.0f;
  config.original_max_position_embeddings = 8192;
  return config;
}

void check_against_cpu(const cpu::RopeConfig& config, cpu::RopeLayout layout, uint32_t seed) {
  const int64_t tokens = 13, q_heads = 9, kv_heads = 3, head_dim = config.head_dim;
  // A fused QKV row: q heads, then k heads, then v heads.
  const int64_t row = (q_heads + 2 * kv_heads) * head_dim;
  const auto qkv = testing_support::random_floats(tokens * row, seed);
  std::vector<int32_t> positions(tokens);
  for (int64_t t = 0; t < tokens; ++t) positions[t] = static_cast<int32_t>((t * 977 + seed) % 9000);
  positions[0] = 0;
  int32_t max_position = 0;
  for (int32_t p : positions) max_position = std::max(max_position, p);

  std::vector<float> expected = qkv;
  cpu::RopeTable cpu_table(config);
  cpu::apply_rope(expected.data(), q_heads, row, expected.data() + q_heads * head_dim, kv_heads, row, positions.data(),
                  tokens, cpu_table, layout);

  DeviceRopeTable table(config);
  DeviceBuffer<float> d(qkv);
  DeviceBuffer<int32_t> dpos(positions);
  apply_rope(d.get(), q_heads, row, d.get() + q_heads * head_dim, kv_heads, row, dpos.get(), tokens, max_position, table,
             layout, nullptr);
  const auto got = d.download();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expected[i]) << "i=" << i;  // v untouched too

  // bf16 storage: the same f32 arithmetic on bf16-exact inputs, rounded once.
  const auto qkv16 = testing_support::bf16_exact(qkv);
  std::vector<float> expected16 = qkv16;
  cpu::apply_rope(expected16.data(), q_heads, row, expected16.data() + q_heads * head_dim, kv_heads, row,
                  positions.data(), tokens, cpu_table, layout);
  DeviceBuffer<bf16> d16(testing_support::to_bf16(qkv16));
  apply_rope(nv(d16.get()), q_heads, row, nv(d16.get()) + q_heads * head_dim, kv_heads, row, dpos.get(), tokens,
             max_position, table, layout, nullptr);
  const auto got16 = d16.download();
  for (size_t i = 0; i < got16.size(); ++i) ASSERT_EQ(got16[i].bits, float_to_bf16(expected16[i]).bits) << i;
}

TEST(CudaRope, NeoxLlama3MatchesCpuBitForBit) {
  TESSERA_REQUIRE_GPUS(1);
  check_against_cpu(llama3_config(), cpu::RopeLayout::kNeox, 1);
}

TEST(CudaRope, InterleavedPlainMatchesCpuBitForBit) {
  TESSERA_REQUIRE_GPUS(1);
  cpu::RopeConfig config;
  config.head_dim = 80;  // not a power of two
  check_against_cpu(config, cpu::RopeLayout::kInterleaved, 2);
}

TEST(CudaRope, LinearScalingMatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  cpu::RopeConfig config;
  config.head_dim = 128;
  config.scaling = cpu::RopeScalingKind::kLinear;
  config.factor = 4.0f;
  check_against_cpu(config, cpu::RopeLayout::kNeox, 3);
}

}  // namespace
}  // namespace tessera::kernels::cuda
