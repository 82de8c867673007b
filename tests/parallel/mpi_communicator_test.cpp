// Runs under mpirun at several world sizes; every check compares values against what each rank can compute
// independently.
#include <gtest/gtest.h>
#include <mpi.h>

#include <numeric>
#include <vector>

#include "kernels/base/error.h"
#include "parallel/mpi/mpi_communicator.h"
#include "parallel/process_groups.h"

namespace tessera::parallel {
namespace {

int world_size() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}
int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

float contribution(int rank, size_t i) { return static_cast<float>(rank + 1) * 0.5f + static_cast<float>(i % 7); }

TEST(MpiCommunicator, WorldMatchesMpi) {
  auto world = MpiCommunicator::world();
  EXPECT_EQ(world->size(), world_size());
  EXPECT_EQ(world->rank(), world_rank());
}

TEST(MpiCommunicator, AllReduceSumF32) {
  auto world = MpiCommunicator::world();
  const int n = world->size();
  for (size_t count : {size_t{1}, size_t{3}, size_t{1000}, size_t{65537}}) {
    std::vector<float> data(count);
    for (size_t i = 0; i < count; ++i) data[i] = contribution(world->rank(), i);
    world->all_reduce_sum(host_span(data));
    for (size_t i = 0; i < count; ++i) {
      float expected = 0;
      for (int r = 0; r < n; ++r) expected += contribution(r, i);
      ASSERT_FLOAT_EQ(data[i], expected) << "count=" << count << " i=" << i;
    }
  }
}

TEST(MpiCommunicator, AllReduceSumBf16AccumulatesInF32) {
  auto world = MpiCommunicator::world();
  const int n = world->size();
  std::vector<bf16> data(257);
  for (size_t i = 0; i < data.size(); ++i) data[i] = float_to_bf16(contribution(world->rank(), i));
  world->all_reduce_sum(host_span(data));
  for (size_t i = 0; i < data.size(); ++i) {
    float expected = 0;
    for (int r = 0; r < n; ++r) expected += bf16_to_float(float_to_bf16(contribution(r, i)));
    EXPECT_EQ(data[i].bits, float_to_bf16(expected).bits) << "i=" << i;
  }
}

TEST(MpiCommunicator, AllGatherPlacesEachMembersSliceInRankOrder) {
  auto world = MpiCommunicator::world();
  const size_t count = 5;
  std::vector<float> mine(count);
  for (size_t i = 0; i < count; ++i) mine[i] = static_cast<float>(world->rank() * 100 + static_cast<int>(i));
  std::vector<float> all(count * world->size(), -1.0f);
  world->all_gather(host_span(mine), host_span(all));
  for (int r = 0; r < world->size(); ++r) {
    for (size_t i = 0; i < count; ++i) {
      EXPECT_EQ(all[r * count + i], static_cast<float>(r * 100 + static_cast<int>(i)));
    }
  }
}

TEST(MpiCommunicator, BroadcastFromEveryRoot) {
  auto world = MpiCommunicator::world();
  for (int root = 0; root < world->size(); ++root) {
    std::vector<int> data(17, -1);
    if (world->rank() == root) std::iota(data.begin(), data.end(), root * 1000);
    world->broadcast(host_span(data), root);
    for (size_t i = 0; i < data.size(); ++i) EXPECT_EQ(data[i], root * 1000 + static_cast<int>(i));
  }
}

TEST(MpiCommunicator, SendRecvAroundARing) {
  auto world = MpiCommunicator::world();
  const int n = world->size();
  if (n == 1) GTEST_SKIP() << "send/recv needs two ranks";
  const int next = (world->rank() + 1) % n;
  const int prev = (world->rank() + n - 1) % n;
  std::vector<double> out(33), in(33, 0.0);
  for (size_t i = 0; i < out.size(); ++i) out[i] = world->rank() * 10.0 + static_cast<double>(i) / 4;
  // Even ranks send first, odd ranks receive first: no deadlock with blocking calls on any ring size.
  if (world->rank() % 2 == 0) {
    world->send(host_span(out), next, MessageTag::kTest);
    world->recv(host_span(in), prev, MessageTag::kTest);
  } else {
    world->recv(host_span(in), prev, MessageTag::kTest);
    world->send(host_span(out), next, MessageTag::kTest);
  }
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(in[i], prev * 10.0 + static_cast<double>(i) / 4);
}

TEST(MpiCommunicator, BadPeerIsAnErrorNamingTheGroup) {
  auto world = MpiCommunicator::world();
  int value = 0;
  try {
    world->send(host_span(&value, 1), world->size(), MessageTag::kTest);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("world"), std::string::npos) << e.what();
  }
}

// Every (tp, pp) factorisation of the world: reductions in the TP group sum only that stage's members, and the
// pipeline group passes a value from stage to stage.
TEST(ProcessGroups, TpAndPipelineGroupsForEveryFactorisation) {
  const int n = world_size();
  for (int tp = 1; tp <= n; ++tp) {
    if (n % tp != 0) continue;
    const int pp = n / tp;
    Topology topo(n, world_rank(), {tp, pp});
    ProcessGroups groups = make_mpi_process_groups(topo);
    ASSERT_EQ(groups.tp->size(), tp);
    ASSERT_EQ(groups.tp->rank(), topo.tp_rank());
    ASSERT_EQ(groups.pipeline->size(), pp);
    ASSERT_EQ(groups.pipeline->rank(), topo.stage());

    float value = static_cast<float>(topo.rank());
    groups.tp->all_reduce_sum(host_span(&value, 1));
    float expected = 0;
    for (int member : topo.tp_group(topo.stage())) expected += static_cast<float>(member);
    EXPECT_EQ(value, expected) << topo.describe();

    // A token travels through the pipeline, each stage adding its index.
    int token = 0;
    if (!topo.is_first_stage()) {
      groups.pipeline->recv(host_span(&token, 1), topo.stage() - 1, MessageTag::kTest);
    }
    token += topo.stage() + 1;
    if (!topo.is_last_stage()) {
      groups.pipeline->send(host_span(&token, 1), topo.stage() + 1, MessageTag::kTest);
    }
    EXPECT_EQ(token, (topo.stage() + 1) * (topo.stage() + 2) / 2) << topo.describe();
  }
}

}  // namespace
}  // namespace tessera::parallel
