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

using testing_support::DeviceBuffer;

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

// ---- Non-blocking operations: every check, the staged backend keeps the host communicator's whole contract ----

class StagedPendingOperations : public StagedCommunicatorTest {
 protected:
  void SetUp() override {
    StagedCommunicatorTest::SetUp();
    if (IsSkipped()) return;
    if (comm_->size() < 2) GTEST_SKIP() << "needs two ranks";
  }
};

TEST_F(StagedPendingOperations, OneTagInPostOrder) { device_checks::async_one_tag_in_post_order(*comm_); }
TEST_F(StagedPendingOperations, TagsAreIndependent) { device_checks::async_tags_are_independent(*comm_); }
TEST_F(StagedPendingOperations, TestAndWaitWithoutSpinning) {
  device_checks::async_test_and_wait_without_spinning(*comm_);
}
TEST_F(StagedPendingOperations, ReceiveOfAnotherSizeThrows) {
  device_checks::async_receive_of_another_size_throws(*comm_);
}
TEST_F(StagedPendingOperations, DroppedSendStillDelivers) { device_checks::async_dropped_send_still_delivers(*comm_); }
TEST_F(StagedPendingOperations, DroppedUnmatchedReceiveIsCancelled) {
  device_checks::async_dropped_unmatched_receive_is_cancelled(*comm_);
}
TEST_F(StagedPendingOperations, MoveAssignmentFinishesThePreviousOperation) {
  device_checks::async_move_assignment_finishes_the_previous_operation(*comm_);
}
TEST_F(StagedPendingOperations, BroadcastFromARootThatDoesNotWait) {
  auto side = MpiCommunicator::world();
  device_checks::async_broadcast_from_a_root_that_does_not_wait(*comm_, *side);
}
TEST_F(StagedPendingOperations, LargeMessages) { device_checks::async_large_messages(*comm_); }

TEST_F(StagedPendingOperations, EventsAndBuffersAreReused) {
  DeviceBuffer<float> data(256);
  for (int i = 0; i < 50; ++i) {
    if (comm_->rank() > 1) continue;
    PendingOperation op = comm_->rank() == 0
                              ? comm_->start_send(device_checks::span(data), 1, MessageTag::kTest)
                              : comm_->start_recv(device_checks::span(data), 0, MessageTag::kTest);
    op.wait();
  }
  if (comm_->rank() <= 1) {
    EXPECT_EQ(comm_->events_created(), 1u) << "one event per copy in flight, reused";
    EXPECT_EQ(comm_->idle_staging_buffers(), 1u) << "every op gave its staging buffer back, and the next took it";
  }
  comm_->barrier();
}

}  // namespace
}  // namespace tessera::parallel
