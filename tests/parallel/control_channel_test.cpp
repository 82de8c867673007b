// Under mpirun: the rank watchdog's control channel (parallel/control_channel.h). Every follower's message reaches
// the leader intact and tagged with its rank, the leader's reach every follower, host names travel at set-up, and a
// follower that closes its end is reported to the leader once.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

#include "parallel/control_channel.h"
#include "parallel/mpi/mpi_communicator.h"

namespace tessera::parallel {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(ControlChannel, MessagesTravelBothWaysAndClosesAreReported) {
  auto world = MpiCommunicator::world();
  const int rank = world->rank();
  const int size = world->size();
  auto channel = ControlChannel::open(*world, "host-" + std::to_string(rank), 10s);
  ASSERT_EQ(channel->rank(), rank);
  EXPECT_EQ(channel->host_of(rank), "host-" + std::to_string(rank));
  EXPECT_EQ(channel->host_of(0), "host-0");

  const auto deadline = Clock::now() + 20s;
  if (rank == 0) {
    for (int r = 1; r < size; ++r) EXPECT_EQ(channel->host_of(r), "host-" + std::to_string(r));
    std::set<int> heard;
    std::set<int> closed;
    while (static_cast<int>(heard.size()) < size - 1 && Clock::now() < deadline) {
      channel->poll(100ms, [&](int peer, const ControlMessage& m) {
        EXPECT_EQ(m.kind, ControlMessage::Kind::kFailure);
        EXPECT_EQ(m.activity.activity, Activity::kExecutingStep);
        EXPECT_EQ(m.activity.step, 1000u + static_cast<uint64_t>(peer));
        EXPECT_EQ(m.text, "report from rank " + std::to_string(peer));
        heard.insert(peer);
      }, [&](int peer) { closed.insert(peer); });
    }
    ASSERT_EQ(static_cast<int>(heard.size()), size - 1);
    ControlMessage abort;
    abort.kind = ControlMessage::Kind::kAbort;
    abort.text = std::string(5000, 'x');  // longer than one read
    for (int r = 1; r < size; ++r) channel->send(r, abort);
    channel->flush(5s);
    while (static_cast<int>(closed.size()) < size - 1 && Clock::now() < deadline) {
      channel->poll(100ms, [&](int, const ControlMessage&) { ADD_FAILURE() << "no message expected after the reports"; },
                    [&](int peer) {
                      EXPECT_EQ(closed.count(peer), 0u) << "rank " << peer << " reported closed twice";
                      closed.insert(peer);
                    });
    }
    EXPECT_EQ(static_cast<int>(closed.size()), size - 1);
  } else {
    ControlMessage report;
    report.kind = ControlMessage::Kind::kFailure;
    report.activity = {Activity::kExecutingStep, 1000u + static_cast<uint64_t>(rank), 1500ms};
    report.text = "report from rank " + std::to_string(rank);
    channel->send(0, report);
    bool aborted = false;
    while (!aborted && Clock::now() < deadline) {
      channel->poll(100ms, [&](int peer, const ControlMessage& m) {
        EXPECT_EQ(peer, 0);
        EXPECT_EQ(m.kind, ControlMessage::Kind::kAbort);
        EXPECT_EQ(m.text, std::string(5000, 'x'));
        aborted = true;
      }, [&](int) { ADD_FAILURE() << "the leader closed first"; });
    }
    EXPECT_TRUE(aborted);
    channel.reset();  // closes this end: the leader must notice
  }
  world->barrier();
}

}  // namespace
}  // namespace tessera::parallel
