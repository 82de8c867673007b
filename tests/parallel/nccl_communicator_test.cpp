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
#include "tests/support/gpu_test_support.h"

namespace tessera::parallel {
namespace {

using testing_support::DeviceBuffer;

float contribution(int rank, size_t i) { return static_cast<float>(rank + 1) * 0.25f + static_cast<float>(i % 11); }

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
  auto& comm = make();
  for (size_t count : {size_t{1}, size_t{3}, size_t{1000}, size_t{65537}}) {
    std::vector<float> host(count);
    for (size_t i = 0; i < count; ++i) host[i] = contribution(comm.rank(), i);
    DeviceBuffer<float> data(host);
    comm.all_reduce_sum(data.get(), count);
    const std::vector<float> result = data.download();
    for (size_t i = 0; i < count; ++i) {
      float expected = 0;
      for (int r = 0; r < comm.size(); ++r) expected += contribution(r, i);
      ASSERT_FLOAT_EQ(result[i], expected) << "count=" << count << " i=" << i;
    }
  }
}

TEST_F(NcclCommunicatorTest, AllReduceSumBf16AccumulatesInF32) {
  auto& comm = make();
  std::vector<bf16> host(257);
  for (size_t i = 0; i < host.size(); ++i) host[i] = float_to_bf16(contribution(comm.rank(), i) * 1.001f);
  DeviceBuffer<bf16> data(host);
  comm.all_reduce_sum(data.get(), host.size());
  const std::vector<bf16> result = data.download();
  for (size_t i = 0; i < host.size(); ++i) {
    float expected = 0;
    for (int r = 0; r < comm.size(); ++r) expected += bf16_to_float(float_to_bf16(contribution(r, i) * 1.001f));
    EXPECT_EQ(result[i].bits, float_to_bf16(expected).bits) << "i=" << i;
  }
}

TEST_F(NcclCommunicatorTest, AllGatherOrdersByMember) {
  auto& comm = make();
  const size_t count = 129;
  std::vector<float> mine(count);
  for (size_t i = 0; i < count; ++i) mine[i] = contribution(comm.rank(), i);
  DeviceBuffer<float> send(mine);
  DeviceBuffer<float> recv(count * static_cast<size_t>(comm.size()));
  comm.all_gather(send.get(), recv.get(), count);
  const std::vector<float> gathered = recv.download();
  for (int r = 0; r < comm.size(); ++r) {
    for (size_t i = 0; i < count; ++i) ASSERT_EQ(gathered[r * count + i], contribution(r, i)) << "r=" << r;
  }
}

TEST_F(NcclCommunicatorTest, BroadcastFromEveryRoot) {
  auto& comm = make();
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<uint8_t> host(1001);
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>(comm.rank() == root ? (i * 7 + root) : 0);
    DeviceBuffer<uint8_t> data(host);
    comm.broadcast(data.get(), host.size(), root);
    const std::vector<uint8_t> result = data.download();
    for (size_t i = 0; i < host.size(); ++i) ASSERT_EQ(result[i], static_cast<uint8_t>(i * 7 + root)) << "root=" << root;
  }
}

TEST_F(NcclCommunicatorTest, SendRecvAroundTheRing) {
  auto& comm = make();
  if (comm.size() < 2) GTEST_SKIP() << "needs two ranks";
  const int next = (comm.rank() + 1) % comm.size();
  const int prev = (comm.rank() + comm.size() - 1) % comm.size();
  std::vector<float> mine(777);
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = contribution(comm.rank(), i);
  DeviceBuffer<float> out(mine);
  DeviceBuffer<float> in(mine.size());
  // Even members send first: blocking send/recv pairs must not all wait on each other.
  if (comm.rank() % 2 == 0) {
    comm.send(out.get(), mine.size() * sizeof(float), next, MessageTag::kTest);
    comm.recv(in.get(), mine.size() * sizeof(float), prev, MessageTag::kTest);
  } else {
    comm.recv(in.get(), mine.size() * sizeof(float), prev, MessageTag::kTest);
    comm.send(out.get(), mine.size() * sizeof(float), next, MessageTag::kTest);
  }
  const std::vector<float> got = in.download();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], contribution(prev, i));
  comm.barrier();
}

TEST_F(NcclCommunicatorTest, BadPeerNamesGroupAndOp) {
  auto& comm = make();
  DeviceBuffer<float> data(4);
  try {
    comm.send(data.get(), 16, comm.size(), MessageTag::kTest);
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
      comm.all_reduce_sum(data.get(), 1024);
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

}  // namespace
}  // namespace tessera::parallel
