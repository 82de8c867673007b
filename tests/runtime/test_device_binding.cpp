// Rank -> GPU mapping from the local rank: pure functions, no GPU needed (the local rank itself:
// tests/parallel/test_local_rank.cpp).
#include <gtest/gtest.h>

#include <string>

#include "kernels/base/error.h"
#include "runtime/device/device_binding.h"
#include "tests/support/error_text.h"

namespace tessera::runtime {
namespace {

using testing::error_of;

TEST(VisibleDevices, ParsesEntries) {
  EXPECT_EQ(parse_visible_devices("0,1, 3"), (std::vector<std::string>{"0", "1", "3"}));
  EXPECT_EQ(parse_visible_devices("GPU-8e1f,MIG-2"), (std::vector<std::string>{"GPU-8e1f", "MIG-2"}));
  EXPECT_TRUE(parse_visible_devices("").empty());
}

TEST(ChooseDevice, OneRankPerGpu) {
  for (int rank = 0; rank < 4; ++rank) {
    const DeviceBinding binding = choose_device({rank, 4, "OMPI_COMM_WORLD_LOCAL_RANK"}, 4, 1, std::nullopt);
    EXPECT_EQ(binding.device, rank);
    EXPECT_EQ(binding.physical, std::to_string(rank));
    EXPECT_EQ(binding.ranks_on_device, 1);
  }
}

TEST(ChooseDevice, SeveralRanksPerGpu) {
  // 6 ranks, 2 per GPU: 0,1 -> 0; 2,3 -> 1; 4,5 -> 2.
  for (int rank = 0; rank < 6; ++rank) {
    const DeviceBinding binding = choose_device({rank, 6, "SLURM_LOCALID"}, 3, 2, std::nullopt);
    EXPECT_EQ(binding.device, rank / 2);
    EXPECT_EQ(binding.ranks_on_device, 2);
  }
  // 5 ranks, 2 per GPU: the last GPU has one.
  EXPECT_EQ(choose_device({4, 5, "SLURM_LOCALID"}, 3, 2, std::nullopt).ranks_on_device, 1);
}

TEST(ChooseDevice, NamesThePhysicalDeviceFromCudaVisibleDevices) {
  const LocalRank local{1, 2, "OMPI_COMM_WORLD_LOCAL_RANK"};
  const DeviceBinding binding = choose_device(local, 2, 1, std::string("4,6"));
  EXPECT_EQ(binding.device, 1);  // ordinals count visible devices only
  EXPECT_EQ(binding.physical, "6");
  EXPECT_EQ(binding.describe(local),
            "local rank 1 (OMPI_COMM_WORLD_LOCAL_RANK) -> cuda:1 (CUDA_VISIBLE_DEVICES entry 6)");
}

TEST(ChooseDevice, LauncherIsolationGivesEveryRankOrdinalZero) {
  // srun --gpus-per-task=1: each rank sees only its own GPU.
  const DeviceBinding binding = choose_device({3, 4, "SLURM_LOCALID"}, 1, 1, std::string("3"));
  EXPECT_EQ(binding.device, 0);
  EXPECT_EQ(binding.physical, "3");
}

TEST(ChooseDevice, TooFewDevicesIsAClearError) {
  const std::string message =
      error_of([] { choose_device({5, 6, "OMPI_COMM_WORLD_LOCAL_RANK"}, 4, 1, std::string("0,1,2,3")); });
  EXPECT_NE(message.find("local rank 5 (OMPI_COMM_WORLD_LOCAL_RANK) with ranks_per_gpu 1 needs device 5 but only 4"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("CUDA_VISIBLE_DEVICES='0,1,2,3'"), std::string::npos) << message;
  EXPECT_NE(error_of([] { choose_device({0, 1, "SLURM_LOCALID"}, 0, 1, std::nullopt); }).find("found no CUDA device"),
            std::string::npos);
  EXPECT_THROW(choose_device({0, 1, "SLURM_LOCALID"}, 1, 0, std::nullopt), Error);
}

}  // namespace
}  // namespace tessera::runtime
