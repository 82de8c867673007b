// NcclCommunicator under mpirun, one GPU per rank: values checked against what every rank computes alone.
// Without enough GPUs on the node every rank reports the tests as skipped (decided together, so that no
// rank waits in a collective that the others skipped).
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <string>
#include <vector>

#include "kernels/base/error.h"
#include "parallel/mpi/mpi_communicator.h"
#include "parallel/nccl/nccl_communicator.h"
#include "tests/parallel/device_communicator_checks.h"
#include "tests/support/gpu_test_support.h"

namespace tessera::parallel {
namespace {

using testing_support::DeviceBuffer;

// Every rank of the node needs its own GPU; the answer is agreed over the world.
bool enough_gpus_everywhere() {
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_rank = 0;
  int local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  int ok = testing_support::gpu_count() >= local_size ? 1 : 0;
  if (ok == 1 && cudaSetDevice(local_rank) != cudaSuccess) ok = 0;
  int all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all_ok == 1;
}

class NcclCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!enough_gpus_everywhere()) GTEST_SKIP() << "skipped: no GPU (one per rank needed)";
    bootstrap_ = MpiCommunicator::world();
    TESSERA_CUDA_CHECK(cudaStreamCreate(&stream_));
  }
  void TearDown() override {
    comm_.reset();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  NcclCommunicator& make(NcclOptions options = {}) {
    comm_ = std::make_unique<NcclCommunicator>(*bootstrap_, stream_, options);
    return *comm_;
  }

  std::unique_ptr<MpiCommunicator> bootstrap_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<NcclCommunicator> comm_;
};

TEST_F(NcclCommunicatorTest, MembersMatchBootstrap) {
  auto& comm = make();
  EXPECT_EQ(comm.rank(), bootstrap_->rank());
  EXPECT_EQ(comm.size(), bootstrap_->size());
  EXPECT_EQ(comm.name(), "world");
}

TEST_F(NcclCommunicatorTest, AllReduceSumF32) {
  device_checks::all_reduce_sum_f32(make(), {1, 3, 1000, 65537});
}

TEST_F(NcclCommunicatorTest, AllReduceSumBf16AccumulatesInF32) {
  device_checks::all_reduce_sum_bf16(make());
}

TEST_F(NcclCommunicatorTest, AllGatherOrdersByMember) {
  device_checks::all_gather_orders_by_member(make());
}

TEST_F(NcclCommunicatorTest, BroadcastFromEveryRoot) {
  device_checks::broadcast_from_every_root(make());
}

TEST_F(NcclCommunicatorTest, SendRecvAroundTheRing) {
  auto& comm = make();
  if (comm.size() < 2) GTEST_SKIP() << "needs two ranks";
  device_checks::send_recv_around_the_ring(comm);
}

TEST_F(NcclCommunicatorTest, BadPeerNamesGroupAndOp) {
  auto& comm = make();
  DeviceBuffer<float> data(4);
  try {
    comm.send(device_checks::span(data), comm.size(), MessageTag::kTest);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("NCCL send on world"), std::string::npos) << message;
    EXPECT_NE(message.find("outside the group"), std::string::npos) << message;
  }
}

// Member 0 calls an all-reduce that nobody else joins: it must time out, abort and say so, not hang.
TEST_F(NcclCommunicatorTest, WatchdogTimesOutAMissingPeer) {
  if (bootstrap_->size() < 2) GTEST_SKIP() << "needs two ranks";
  NcclOptions options;
  options.watchdog.timeout = std::chrono::milliseconds(2'000);
  auto& comm = make(options);
  if (comm.rank() == 0) {
    DeviceBuffer<float> data(1024);
    try {
      comm.all_reduce_sum(device_checks::span(data));
      FAIL() << "expected a timeout";
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("NCCL all_reduce on world timed out after 2 s (member 0 of"), std::string::npos)
          << message;
    }
    EXPECT_TRUE(comm.aborted());
    EXPECT_THROW(comm.barrier(), Error);  // an aborted communicator refuses further work
  }
  bootstrap_->barrier();
}

// ---- Non-blocking operations (the checks NCCL supports; what it lacks is checked below) ----

class NcclPendingOperations : public NcclCommunicatorTest {
 protected:
  void SetUp() override {
    NcclCommunicatorTest::SetUp();
    if (IsSkipped()) return;
    if (bootstrap_->size() < 2) GTEST_SKIP() << "needs two ranks";
  }
};

TEST_F(NcclPendingOperations, OneTagInPostOrder) { device_checks::async_one_tag_in_post_order(make()); }

TEST_F(NcclPendingOperations, TestAndWaitWithoutSpinning) {
  device_checks::async_test_and_wait_without_spinning(make());
}

TEST_F(NcclPendingOperations, DroppedSendStillDelivers) { device_checks::async_dropped_send_still_delivers(make()); }

TEST_F(NcclPendingOperations, MoveAssignmentFinishesThePreviousOperation) {
  device_checks::async_move_assignment_finishes_the_previous_operation(make());
}

TEST_F(NcclPendingOperations, BroadcastFromARootThatDoesNotWait) {
  device_checks::async_broadcast_from_a_root_that_does_not_wait(make(), *bootstrap_);
}

TEST_F(NcclPendingOperations, LargeMessages) { device_checks::async_large_messages(make()); }

TEST_F(NcclPendingOperations, EventsComeFromASmallPool) {
  auto& comm = make();
  DeviceBuffer<float> data(256);
  for (int i = 0; i < 50; ++i) {
    PendingOperation op = comm.rank() == 0 ? comm.start_send(device_checks::span(data), 1, MessageTag::kTest)
                                           : comm.start_recv(device_checks::span(data), 0, MessageTag::kTest);
    op.wait();
  }
  EXPECT_EQ(comm.events_created(), 1u) << "one event per op in flight, reused";
  bootstrap_->barrier();
}

// NCCL cannot cancel one op: a receive nobody sends to, dropped, waits the watchdog's timeout, then aborts the
// communicator. It never hangs the rank and never throws from the destructor.
TEST_F(NcclPendingOperations, DroppedUnmatchedReceiveAbortsAfterTheTimeout) {
  NcclOptions options;
  options.watchdog.timeout = std::chrono::milliseconds(2'000);
  auto& comm = make(options);
  if (comm.rank() == 1) {
    DeviceBuffer<float> data(16);
    const auto start = std::chrono::steady_clock::now();
    try {
      PendingOperation recv = comm.start_recv(device_checks::span(data), 0, MessageTag::kTest);
    } catch (const Error& error) {
      // Starting may itself time out, when NCCL waits for member 0 to connect: aborted just the same.
      EXPECT_NE(std::string(error.what()).find("NCCL recv on world timed out"), std::string::npos) << error.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
    EXPECT_TRUE(comm.aborted());
    try {
      PendingOperation after = comm.start_send(device_checks::span(data), 0, MessageTag::kTest);
      FAIL() << "an aborted communicator must refuse new work";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("was aborted"), std::string::npos) << error.what();
    }
  }
  bootstrap_->barrier();
}

}  // namespace
}  // namespace tessera::parallel
