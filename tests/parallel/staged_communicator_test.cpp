// StagedCommunicator under mpirun: every rank on GPU 0 (sharing one GPU is what it is for). Values checked
// against what every rank computes alone. Without a GPU every rank reports the tests as skipped.
#include <gtest/gtest.h>
#include <mpi.h>

#include "kernels/base/error.h"
#include "parallel/mpi/mpi_communicator.h"
#include "parallel/staged/staged_communicator.h"
#include "tests/parallel/device_communicator_checks.h"
#include "tests/support/gpu_test_support.h"

namespace tessera::parallel {
namespace {

bool gpu_everywhere() {
  int ok = testing_support::gpu_count() > 0 && cudaSetDevice(0) == cudaSuccess ? 1 : 0;
  int all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all_ok == 1;
}

class StagedCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gpu_everywhere()) GTEST_SKIP() << "skipped: no GPU";
    TESSERA_CUDA_CHECK(cudaStreamCreate(&stream_));
    comm_ = std::make_unique<StagedCommunicator>(MpiCommunicator::world(), stream_);
  }
  void TearDown() override {
    comm_.reset();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<StagedCommunicator> comm_;
};

TEST_F(StagedCommunicatorTest, AllReduceSumF32ReusesStaging) {
  // The last count is smaller than the ones before it: the staging buffer is reused, not reallocated.
  device_checks::all_reduce_sum_f32(*comm_, {1, 3, 1000, 65537, 5});
}

TEST_F(StagedCommunicatorTest, AllReduceSumBf16AccumulatesInF32) {
  device_checks::all_reduce_sum_bf16(*comm_);
}

TEST_F(StagedCommunicatorTest, AllGatherOrdersByMember) {
  device_checks::all_gather_orders_by_member(*comm_);
}

TEST_F(StagedCommunicatorTest, BroadcastFromEveryRoot) {
  device_checks::broadcast_from_every_root(*comm_);
}

TEST_F(StagedCommunicatorTest, SendRecvAroundTheRing) {
  if (comm_->size() < 2) GTEST_SKIP() << "needs two ranks";
  device_checks::send_recv_around_the_ring(*comm_);
}

}  // namespace
}  // namespace tessera::parallel
