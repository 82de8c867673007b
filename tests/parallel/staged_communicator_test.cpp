// StagedCommunicator under mpirun: every rank on GPU 0 (sharing one GPU is what it is for). Values checked
// against what every rank computes alone. Without a GPU every rank reports the tests as skipped.
#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "kernels/base/error.h"
#include "parallel/mpi/mpi_communicator.h"
#include "parallel/staged/staged_communicator.h"
#include "tests/support/gpu_test_support.h"

namespace tessera::parallel {
namespace {

using testing_support::DeviceBuffer;

float contribution(int rank, size_t i) { return static_cast<float>(rank + 1) * 0.5f + static_cast<float>(i % 7); }

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
  auto& comm = *comm_;
  for (size_t count : {size_t{1}, size_t{3}, size_t{1000}, size_t{65537}, size_t{5}}) {
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

TEST_F(StagedCommunicatorTest, AllReduceSumBf16AccumulatesInF32) {
  auto& comm = *comm_;
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

TEST_F(StagedCommunicatorTest, AllGatherOrdersByMember) {
  auto& comm = *comm_;
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

TEST_F(StagedCommunicatorTest, BroadcastFromEveryRoot) {
  auto& comm = *comm_;
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<uint8_t> host(1001);
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>(comm.rank() == root ? (i * 3 + root) : 0);
    DeviceBuffer<uint8_t> data(host);
    comm.broadcast(data.get(), host.size(), root);
    const std::vector<uint8_t> result = data.download();
    for (size_t i = 0; i < host.size(); ++i) ASSERT_EQ(result[i], static_cast<uint8_t>(i * 3 + root)) << "root=" << root;
  }
}

TEST_F(StagedCommunicatorTest, SendRecvAroundTheRing) {
  auto& comm = *comm_;
  if (comm.size() < 2) GTEST_SKIP() << "needs two ranks";
  const int next = (comm.rank() + 1) % comm.size();
  const int prev = (comm.rank() + comm.size() - 1) % comm.size();
  std::vector<float> mine(777);
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = contribution(comm.rank(), i);
  DeviceBuffer<float> out(mine);
  DeviceBuffer<float> in(mine.size());
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

}  // namespace
}  // namespace tessera::parallel
