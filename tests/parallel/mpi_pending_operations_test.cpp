// The MPI backend's non-blocking operations (start_send, start_recv, start_broadcast and their PendingOperation
// handles) under mpirun with 2 or 3 ranks: members 0 and 1 exchange, the others join the broadcasts and barriers.
// Nothing here may hang: a rank that waits for a peer that should have answered polls with a deadline and fails.
#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "kernels/base/error.h"
#include "parallel/local_rank.h"
#include "parallel/mpi/mpi_communicator.h"

namespace tessera::parallel {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Polls `op` until done or `limit` passes; false on timeout (the caller fails the test; the op stays pending and is
// finished by its destructor once the peer catches up).
bool poll_until_done(PendingOperation& op, std::chrono::milliseconds limit = 20s, int* polls = nullptr) {
  const auto deadline = Clock::now() + limit;
  while (!op.test()) {
    if (polls != nullptr) ++*polls;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

std::vector<int> pattern(size_t count, int seed) {
  std::vector<int> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = seed * 100'000 + static_cast<int>(i % 99'991);
  return v;
}

std::string error_of(PendingOperation& op) {
  try {
    op.wait();
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

class MpiPendingOperations : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = MpiCommunicator::world();
    if (world_->size() < 2) GTEST_SKIP() << "needs two ranks";
  }
  void TearDown() override {
    if (world_ && world_->size() >= 2) world_->barrier();  // every test leaves the ranks in step
  }
  int rank() const { return world_->rank(); }

  std::unique_ptr<MpiCommunicator> world_;
};

TEST_F(MpiPendingOperations, SeveralInFlightWithOneTagMatchInPostOrder) {
  constexpr int kMessages = 8;
  // Each message has its own size, so that a receive matched out of order fails on the size, not just the values.
  const auto size_of = [](int i) { return static_cast<size_t>(100 * (i + 1)); };
  if (rank() == 0) {
    std::vector<std::vector<int>> out;
    std::vector<PendingOperation> sends;
    for (int i = 0; i < kMessages; ++i) out.push_back(pattern(size_of(i), i));
    for (int i = 0; i < kMessages; ++i) sends.push_back(world_->start_send(host_span(out[i]), 1, MessageTag::kTest));
    for (auto& s : sends) EXPECT_TRUE(poll_until_done(s));
  } else if (rank() == 1) {
    std::vector<std::vector<int>> in;
    std::vector<PendingOperation> recvs;
    for (int i = 0; i < kMessages; ++i) in.emplace_back(size_of(i), -1);
    for (int i = 0; i < kMessages; ++i) recvs.push_back(world_->start_recv(host_span(in[i]), 0, MessageTag::kTest));
    for (int i = kMessages - 1; i >= 0; --i) recvs[i].wait();  // completion order does not matter
    for (int i = 0; i < kMessages; ++i) EXPECT_EQ(in[i], pattern(size_of(i), i)) << "message " << i;
  }
}

TEST_F(MpiPendingOperations, DifferentTagsAreIndependent) {
  // 1 MiB each: past the eager limit, so a send completes only once its own receive has matched it.
  const size_t count = 256 * 1024;
  if (rank() == 0) {
    const std::vector<int> a = pattern(count, 1), b = pattern(count, 2);
    PendingOperation send_a = world_->start_send(host_span(a), 1, MessageTag::kTest);
    PendingOperation send_b = world_->start_send(host_span(b), 1, MessageTag::kTestOther);
    EXPECT_TRUE(poll_until_done(send_b)) << "the second tag's message waited for the first tag's receive";
    EXPECT_TRUE(poll_until_done(send_a));
  } else if (rank() == 1) {
    std::vector<int> a(count, -1), b(count, -1);
    // The other tag first: it must match the message sent second, not the older one with the other tag.
    PendingOperation recv_b = world_->start_recv(host_span(b), 0, MessageTag::kTestOther);
    EXPECT_TRUE(poll_until_done(recv_b));
    EXPECT_EQ(b, pattern(count, 2));
    PendingOperation recv_a = world_->start_recv(host_span(a), 0, MessageTag::kTest);
    EXPECT_TRUE(poll_until_done(recv_a));
    EXPECT_EQ(a, pattern(count, 1));
  }
}

// Member 1 sends only when member 0 says so (a "go" message with the other tag), after its first test().
TEST_F(MpiPendingOperations, TestPollsUntilDone) {
  int go = 1;
  if (rank() == 0) {
    std::vector<int> in(64, -1);
    PendingOperation recv = world_->start_recv(host_span(in), 1, MessageTag::kTest);
    EXPECT_FALSE(recv.test()) << "nothing has been sent yet";
    EXPECT_FALSE(recv.done());
    world_->send(host_span(&go, 1), 1, MessageTag::kTestOther);
    ASSERT_TRUE(poll_until_done(recv));
    EXPECT_TRUE(recv.done());
    EXPECT_TRUE(recv.test());  // a done handle stays done
    EXPECT_EQ(in, pattern(64, 7));
  } else if (rank() == 1) {
    world_->recv(host_span(&go, 1), 0, MessageTag::kTestOther);
    const std::vector<int> out = pattern(64, 7);
    world_->send(host_span(out), 0, MessageTag::kTest);
  }
}

TEST_F(MpiPendingOperations, WaitWithoutSpinningSleepsWhileItWaits) {
  int go = 1;
  if (rank() == 0) {
    std::vector<int> in(16, -1);
    PendingOperation recv = world_->start_recv(host_span(in), 1, MessageTag::kTest);
    world_->send(host_span(&go, 1), 1, MessageTag::kTestOther);  // member 1 sends 200 ms after this
    const auto wall_start = Clock::now();
    const double cpu_start = thread_cpu_seconds();
    recv.wait_without_spinning(1ms, 5ms);
    const double cpu = thread_cpu_seconds() - cpu_start;
    const double wall = std::chrono::duration<double>(Clock::now() - wall_start).count();
    EXPECT_TRUE(recv.done());
    EXPECT_EQ(in, pattern(16, 3));
    EXPECT_GT(wall, 0.1);
    EXPECT_LT(cpu, wall / 2) << "waiting " << wall << " s cost " << cpu << " s of CPU: it spun";
  } else if (rank() == 1) {
    world_->recv(host_span(&go, 1), 0, MessageTag::kTestOther);
    std::this_thread::sleep_for(200ms);
    const std::vector<int> out = pattern(16, 3);
    world_->send(host_span(out), 0, MessageTag::kTest);
  }
}

TEST_F(MpiPendingOperations, ReceiveOfAnotherSizeThrowsNamingTheOpAndPeer) {
  if (rank() == 0) {
    const std::vector<int> sixteen = pattern(4, 1), eight = pattern(2, 2), twelve = pattern(3, 3);
    world_->send(host_span(sixteen), 1, MessageTag::kTest);
    world_->send(host_span(eight), 1, MessageTag::kTest);
    world_->send(host_span(twelve), 1, MessageTag::kTest);
  } else if (rank() == 1) {
    std::vector<int> small(2, -1), large(4, -1), right(3, -1);
    PendingOperation too_small = world_->start_recv(host_span(small), 0, MessageTag::kTest);
    const std::string truncated = error_of(too_small);
    EXPECT_NE(truncated.find("recv on world (member 1 of"), std::string::npos) << truncated;
    EXPECT_NE(truncated.find("peer 0, tag 1"), std::string::npos) << truncated;
    EXPECT_NE(truncated.find("larger than the 8-byte receive"), std::string::npos) << truncated;
    EXPECT_TRUE(too_small.done());

    PendingOperation too_large = world_->start_recv(host_span(large), 0, MessageTag::kTest);
    const std::string short_message = error_of(too_large);
    EXPECT_NE(short_message.find("recv on world (member 1 of"), std::string::npos) << short_message;
    EXPECT_NE(short_message.find("peer 0, tag 1"), std::string::npos) << short_message;
    EXPECT_NE(short_message.find("expected 16 bytes, got 8"), std::string::npos) << short_message;

    // Both failed messages were consumed: the next receive gets the next message.
    world_->start_recv(host_span(right), 0, MessageTag::kTest).wait();
    EXPECT_EQ(right, pattern(3, 3));
  }
}

TEST_F(MpiPendingOperations, DroppedSendStillDelivers) {
  const size_t count = 256 * 1024;  // 1 MiB: the bytes leave only once the receiver matches
  if (rank() == 0) {
    std::vector<int> out = pattern(count, 5);
    {
      PendingOperation send = world_->start_send(host_span(out), 1, MessageTag::kTest);
    }  // dropped un-waited: the destructor waits for the transfer
    std::fill(out.begin(), out.end(), 0);  // safe now: the handle is gone, so the send is done
  } else if (rank() == 1) {
    std::this_thread::sleep_for(100ms);  // the sender drops its handle long before this receive starts
    std::vector<int> in(count, -1);
    world_->recv(host_span(in), 0, MessageTag::kTest);
    EXPECT_EQ(in, pattern(count, 5));
  }
}

TEST_F(MpiPendingOperations, DroppedUnmatchedReceiveIsCancelled) {
  if (rank() == 1) {
    std::vector<int> never(4, -1);
    const auto start = Clock::now();
    {
      PendingOperation recv = world_->start_recv(host_span(never), 0, MessageTag::kTest);
    }  // dropped before anything was sent: cancelled, not waited for
    EXPECT_LT(Clock::now() - start, 5s);
    EXPECT_EQ(never, std::vector<int>(4, -1));
  }
  world_->barrier();  // only now does member 0 send: the cancelled receive must not have taken the message
  if (rank() == 0) {
    const std::vector<int> out = pattern(4, 9);
    world_->send(host_span(out), 1, MessageTag::kTest);
  } else if (rank() == 1) {
    std::vector<int> in(4, -1);
    PendingOperation recv = world_->start_recv(host_span(in), 0, MessageTag::kTest);
    EXPECT_TRUE(poll_until_done(recv));
    EXPECT_EQ(in, pattern(4, 9));
  }
}

TEST_F(MpiPendingOperations, MoveAssignmentFinishesThePreviousOperation) {
  const size_t count = 256 * 1024;
  // A send: assigning over its handle waits for it, so its buffer may be overwritten right after.
  if (rank() == 0) {
    std::vector<int> first = pattern(count, 1), second = pattern(count, 2);
    PendingOperation op = world_->start_send(host_span(first), 1, MessageTag::kTest);
    op = world_->start_send(host_span(second), 1, MessageTag::kTest);
    std::fill(first.begin(), first.end(), 0);
    EXPECT_TRUE(poll_until_done(op));
  } else if (rank() == 1) {
    std::this_thread::sleep_for(100ms);
    std::vector<int> first(count, -1), second(count, -1);
    world_->recv(host_span(first), 0, MessageTag::kTest);
    world_->recv(host_span(second), 0, MessageTag::kTest);
    EXPECT_EQ(first, pattern(count, 1));
    EXPECT_EQ(second, pattern(count, 2));
  }
  world_->barrier();
  // An unmatched receive: assigning over its handle cancels it; the new receive gets the message.
  if (rank() == 1) {
    std::vector<int> cancelled(4, -1), received(4, -1);
    PendingOperation op = world_->start_recv(host_span(cancelled), 0, MessageTag::kTest);
    op = world_->start_recv(host_span(received), 0, MessageTag::kTest);
    world_->barrier();
    EXPECT_TRUE(poll_until_done(op));
    EXPECT_EQ(received, pattern(4, 4));
    EXPECT_EQ(cancelled, std::vector<int>(4, -1));
  } else {
    world_->barrier();
    const std::vector<int> out = pattern(4, 4);
    if (rank() == 0) world_->send(host_span(out), 1, MessageTag::kTest);
  }
}

TEST_F(MpiPendingOperations, BroadcastFromARootThatDoesNotWait) {
  // The root starts its broadcasts, then tells every member to join them: if starting waited for the members,
  // they would never hear (they poll with a deadline and fail instead of hanging).
  for (const int root : {0, world_->size() - 1}) {
    constexpr int kBroadcasts = 4;
    std::vector<std::vector<int>> data;
    for (int b = 0; b < kBroadcasts; ++b) {
      data.push_back(rank() == root ? pattern(1000 * (b + 1), root * 10 + b) : std::vector<int>(1000 * (b + 1), -1));
    }
    if (rank() == root) {
      std::vector<PendingOperation> ops;
      for (auto& d : data) ops.push_back(world_->start_broadcast(host_span(d), root));
      int go = 1;
      std::vector<PendingOperation> notes;
      for (int member = 0; member < world_->size(); ++member) {
        if (member != root) notes.push_back(world_->start_send(host_span(&go, 1), member, MessageTag::kTestOther));
      }
      for (auto& n : notes) EXPECT_TRUE(poll_until_done(n));
      for (auto& op : ops) EXPECT_TRUE(poll_until_done(op));
    } else {
      int go = 0;
      PendingOperation note = world_->start_recv(host_span(&go, 1), root, MessageTag::kTestOther);
      EXPECT_TRUE(poll_until_done(note)) << "the root did not get past its start_broadcast calls";
      std::vector<PendingOperation> ops;
      for (auto& d : data) ops.push_back(world_->start_broadcast(host_span(d), root));
      for (auto& op : ops) op.wait_without_spinning();
      for (int b = 0; b < kBroadcasts; ++b) EXPECT_EQ(data[b], pattern(1000 * (b + 1), root * 10 + b)) << b;
    }
  }
}

TEST_F(MpiPendingOperations, LargeMessagesAndBroadcasts) {
  const size_t count = 9 * 1024 * 1024 / sizeof(int) + 3;  // just over 9 MiB
  if (rank() == 0) {
    const std::vector<int> out = pattern(count, 8);
    PendingOperation send = world_->start_send(host_span(out), 1, MessageTag::kTest);
    EXPECT_TRUE(poll_until_done(send, 60s));
  } else if (rank() == 1) {
    std::vector<int> in(count, -1);
    PendingOperation recv = world_->start_recv(host_span(in), 0, MessageTag::kTest);
    EXPECT_TRUE(poll_until_done(recv, 60s));
    EXPECT_EQ(in, pattern(count, 8));
  }
  std::vector<int> all = rank() == 0 ? pattern(count, 6) : std::vector<int>(count, -1);
  PendingOperation broadcast = world_->start_broadcast(host_span(all), 0);
  EXPECT_TRUE(poll_until_done(broadcast, 60s));
  EXPECT_EQ(all, pattern(count, 6));
}

TEST(MpiNodeLocalRank, EveryRankOfOneNodeIsCounted) {
  // Under CTest every rank runs on this machine: the node-local rank is the world rank.
  const LocalRank local = mpi_node_local_rank();
  auto world = MpiCommunicator::world();
  EXPECT_EQ(local.rank, world->rank());
  EXPECT_EQ(local.size, world->size());
  EXPECT_EQ(local.source, "MPI_COMM_TYPE_SHARED");
}

}  // namespace
}  // namespace tessera::parallel
