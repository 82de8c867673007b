// KV-cache sizing from gpu_memory_fraction: pure arithmetic, checked against hand-computed numbers.
#include <gtest/gtest.h>

#include <string>

#include "kernels/base/error.h"
#include "runtime/device/kv_cache_budget.h"

namespace tessera::runtime {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

TEST(KvBlockBytes, CountsKAndVForEveryLayer) {
  // SmolLM2-135M on one rank: 30 layers, 3 KV heads of 64, block of 16 tokens, bf16.
  EXPECT_EQ(kv_block_bytes(30, 16, 3, 64, 2), uint64_t{2} * 30 * 16 * 3 * 64 * 2);
  EXPECT_THROW(kv_block_bytes(0, 16, 3, 64, 2), Error);
}

TEST(PlanKvCache, TakesWhatTheFractionLeavesAfterWeights) {
  KvCacheBudgetInput input;
  input.total_device_bytes = 80 * kGiB;
  input.gpu_memory_fraction = 0.9;  // 72 GiB
  input.weight_bytes = 16 * kGiB;
  input.reserved_bytes = 2 * kGiB;   // 54 GiB left
  input.block_bytes = 2 * 1024 * 1024;  // 2 MiB
  const KvCacheBudget budget = plan_kv_cache(input);
  EXPECT_EQ(budget.budget_bytes, 72 * kGiB);
  EXPECT_EQ(budget.num_blocks, 27648);  // 54 GiB / 2 MiB
  EXPECT_EQ(budget.kv_bytes, static_cast<uint64_t>(budget.num_blocks) * input.block_bytes);
  EXPECT_LE(budget.kv_bytes + input.weight_bytes + input.reserved_bytes, budget.budget_bytes);

  input.block_bytes = 3 * 1024 * 1024 + 7;  // blocks that do not divide evenly: round down
  EXPECT_EQ(plan_kv_cache(input).num_blocks, static_cast<int64_t>(54 * kGiB / input.block_bytes));
}

TEST(PlanKvCache, DefaultFractionIsNinetyPercent) { EXPECT_EQ(KvCacheBudgetInput{}.gpu_memory_fraction, 0.9); }

TEST(PlanKvCache, NoRoomIsAnErrorWithEveryNumber) {
  KvCacheBudgetInput input;
  input.total_device_bytes = 24 * kGiB;
  input.gpu_memory_fraction = 0.5;
  input.weight_bytes = 14 * kGiB;
  input.block_bytes = 1 << 20;
  try {
    plan_kv_cache(input);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("gpu_memory_fraction 0.5 of 24.00 GiB is 12.00 GiB, the weights take 14.00 GiB"),
              std::string::npos)
        << message;
  }
  input.gpu_memory_fraction = 1.5;
  EXPECT_THROW(plan_kv_cache(input), Error);
  input.gpu_memory_fraction = 0.0;
  EXPECT_THROW(plan_kv_cache(input), Error);
}

}  // namespace
}  // namespace tessera::runtime
