#pragma once
// The value checks every DeviceCommunicator (NCCL, staged) must pass, written once: each rank fills device
// buffers with values only it knows how to make, runs the op, and compares with what it computes alone.
// Call them from a test body under mpirun; every rank of the communicator must call the same check.
// The non-blocking checks (async_*) mirror tests/parallel/mpi_pending_operations_test.cpp; members 0 and 1
// exchange, the others join only the broadcasts. The ones marked "not NCCL" check what NCCL does not offer (tags,
// size checks, cancellation; parallel/nccl/nccl_communicator.h).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/base/half.h"
#include "parallel/communicator.h"
#include "tests/support/gpu_test_support.h"

namespace tessera::parallel::device_checks {

using testing_support::DeviceBuffer;

// A test buffer's memory, as the device communicators take it.
template <class T>
DeviceSpan<T> span(DeviceBuffer<T>& buffer) {
  return device_span(buffer.get(), buffer.size());
}

// What member `rank` puts at index i: distinct per rank and exact in f32 (and in bf16 sums of a few ranks).
inline float contribution(int rank, size_t i) {
  return static_cast<float>(rank + 1) * 0.25f + static_cast<float>(i % 11);
}

inline void all_reduce_sum_f32(DeviceCommunicator& comm, const std::vector<size_t>& counts) {
  for (size_t count : counts) {
    std::vector<float> host(count);
    for (size_t i = 0; i < count; ++i) host[i] = contribution(comm.rank(), i);
    DeviceBuffer<float> data(host);
    comm.all_reduce_sum(span(data));
    const std::vector<float> result = data.download();
    for (size_t i = 0; i < count; ++i) {
      float expected = 0;
      for (int r = 0; r < comm.size(); ++r) expected += contribution(r, i);
      ASSERT_FLOAT_EQ(result[i], expected) << "count=" << count << " i=" << i;
    }
  }
}

// bf16 sums must be accumulated in f32 and rounded once.
inline void all_reduce_sum_bf16(DeviceCommunicator& comm) {
  std::vector<bf16> host(257);
  for (size_t i = 0; i < host.size(); ++i) host[i] = float_to_bf16(contribution(comm.rank(), i) * 1.001f);
  DeviceBuffer<bf16> data(host);
  comm.all_reduce_sum(span(data));
  const std::vector<bf16> result = data.download();
  for (size_t i = 0; i < host.size(); ++i) {
    float expected = 0;
    for (int r = 0; r < comm.size(); ++r) expected += bf16_to_float(float_to_bf16(contribution(r, i) * 1.001f));
    EXPECT_EQ(result[i].bits, float_to_bf16(expected).bits) << "i=" << i;
  }
}

inline void all_gather_orders_by_member(DeviceCommunicator& comm) {
  const size_t count = 129;
  std::vector<float> mine(count);
  for (size_t i = 0; i < count; ++i) mine[i] = contribution(comm.rank(), i);
  DeviceBuffer<float> send(mine);
  DeviceBuffer<float> recv(count * static_cast<size_t>(comm.size()));
  comm.all_gather(span(send), span(recv));
  const std::vector<float> gathered = recv.download();
  for (int r = 0; r < comm.size(); ++r) {
    for (size_t i = 0; i < count; ++i) ASSERT_EQ(gathered[r * count + i], contribution(r, i)) << "r=" << r;
  }
}

inline void broadcast_from_every_root(DeviceCommunicator& comm) {
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<uint8_t> host(1001);
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>(comm.rank() == root ? (i * 7 + root) : 0);
    DeviceBuffer<uint8_t> data(host);
    comm.broadcast(span(data), root);
    const std::vector<uint8_t> result = data.download();
    for (size_t i = 0; i < host.size(); ++i) ASSERT_EQ(result[i], static_cast<uint8_t>(i * 7 + root)) << "root=" << root;
  }
}

// Each member sends to the next and receives from the previous one; needs at least two members.
inline void send_recv_around_the_ring(DeviceCommunicator& comm) {
  const int next = (comm.rank() + 1) % comm.size();
  const int prev = (comm.rank() + comm.size() - 1) % comm.size();
  std::vector<float> mine(777);
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = contribution(comm.rank(), i);
  DeviceBuffer<float> out(mine);
  DeviceBuffer<float> in(mine.size());
  // Even members send first: blocking send/recv pairs must not all wait on each other.
  if (comm.rank() % 2 == 0) {
    comm.send(span(out), next, MessageTag::kTest);
    comm.recv(span(in), prev, MessageTag::kTest);
  } else {
    comm.recv(span(in), prev, MessageTag::kTest);
    comm.send(span(out), next, MessageTag::kTest);
  }
  const std::vector<float> got = in.download();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], contribution(prev, i));
  comm.barrier();
}

// ---- Non-blocking operations ----

using namespace std::chrono_literals;

// Polls until done or `limit` passes; false on timeout.
inline bool poll_until_done(PendingOperation& op, std::chrono::milliseconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!op.test()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

inline std::vector<float> values(size_t count, int seed) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = static_cast<float>(seed * 1000 + static_cast<int>(i % 997));
  return v;
}

using Buffers = std::vector<std::unique_ptr<DeviceBuffer<float>>>;

// Several sends with one tag in flight at once; the receives, started in the same order, match them in that order
// (each message has its own size, so that a mix-up shows).
inline void async_one_tag_in_post_order(DeviceCommunicator& comm) {
  constexpr int kMessages = 6;
  const auto size_of = [](int i) { return static_cast<size_t>(257 * (i + 1)); };
  if (comm.rank() == 0) {
    Buffers out;
    std::vector<PendingOperation> sends;
    for (int i = 0; i < kMessages; ++i) out.push_back(std::make_unique<DeviceBuffer<float>>(values(size_of(i), i)));
    for (int i = 0; i < kMessages; ++i) sends.push_back(comm.start_send(span(*out[i]), 1, MessageTag::kTest));
    for (auto& s : sends) EXPECT_TRUE(poll_until_done(s));
  } else if (comm.rank() == 1) {
    Buffers in;
    std::vector<PendingOperation> recvs;
    for (int i = 0; i < kMessages; ++i) in.push_back(std::make_unique<DeviceBuffer<float>>(size_of(i)));
    for (int i = 0; i < kMessages; ++i) recvs.push_back(comm.start_recv(span(*in[i]), 0, MessageTag::kTest));
    for (int i = kMessages - 1; i >= 0; --i) recvs[static_cast<size_t>(i)].wait();
    for (int i = 0; i < kMessages; ++i) EXPECT_EQ(in[i]->download(), values(size_of(i), i)) << "message " << i;
  }
  comm.barrier();
}

// Not NCCL: a receive with another tag matches the later message with its tag, not the older one.
inline void async_tags_are_independent(DeviceCommunicator& comm) {
  const size_t count = 256 * 1024;  // 1 MiB: past MPI's eager limit
  if (comm.rank() == 0) {
    DeviceBuffer<float> a(values(count, 1)), b(values(count, 2));
    PendingOperation send_a = comm.start_send(span(a), 1, MessageTag::kTest);
    PendingOperation send_b = comm.start_send(span(b), 1, MessageTag::kTestOther);
    EXPECT_TRUE(poll_until_done(send_b));
    EXPECT_TRUE(poll_until_done(send_a));
  } else if (comm.rank() == 1) {
    DeviceBuffer<float> a(count), b(count);
    PendingOperation recv_b = comm.start_recv(span(b), 0, MessageTag::kTestOther);
    EXPECT_TRUE(poll_until_done(recv_b));
    EXPECT_EQ(b.download(), values(count, 2));
    PendingOperation recv_a = comm.start_recv(span(a), 0, MessageTag::kTest);
    EXPECT_TRUE(poll_until_done(recv_a));
    EXPECT_EQ(a.download(), values(count, 1));
  }
  comm.barrier();
}

// test() answers until the message (sent 50 ms late) is in device memory; wait_without_spinning() likewise.
inline void async_test_and_wait_without_spinning(DeviceCommunicator& comm) {
  if (comm.rank() == 0) {
    DeviceBuffer<float> first(64), second(64);
    PendingOperation recv = comm.start_recv(span(first), 1, MessageTag::kTest);
    EXPECT_TRUE(poll_until_done(recv));
    EXPECT_TRUE(recv.done());
    EXPECT_TRUE(recv.test());
    EXPECT_EQ(first.download(), values(64, 7));
    PendingOperation again = comm.start_recv(span(second), 1, MessageTag::kTest);
    again.wait_without_spinning();
    EXPECT_TRUE(again.done());
    EXPECT_EQ(second.download(), values(64, 8));
  } else if (comm.rank() == 1) {
    DeviceBuffer<float> first(values(64, 7)), second(values(64, 8));
    std::this_thread::sleep_for(50ms);
    comm.send(span(first), 0, MessageTag::kTest);
    std::this_thread::sleep_for(50ms);
    comm.send(span(second), 0, MessageTag::kTest);
  }
  comm.barrier();
}

// Not NCCL: a receive of another size than the message throws, naming the op and the peer; the next one works.
inline void async_receive_of_another_size_throws(DeviceCommunicator& comm) {
  if (comm.rank() == 0) {
    DeviceBuffer<float> four(values(4, 1)), three(values(3, 3));
    comm.send(span(four), 1, MessageTag::kTest);
    comm.send(span(three), 1, MessageTag::kTest);
  } else if (comm.rank() == 1) {
    DeviceBuffer<float> two(2), three(3);
    PendingOperation wrong = comm.start_recv(span(two), 0, MessageTag::kTest);
    std::string message;
    try {
      wrong.wait();
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("recv on " + comm.name()), std::string::npos) << message;
    EXPECT_NE(message.find("peer 0"), std::string::npos) << message;
    EXPECT_TRUE(wrong.done());
    comm.start_recv(span(three), 0, MessageTag::kTest).wait();
    EXPECT_EQ(three.download(), values(3, 3));
  }
  comm.barrier();
}

// A send whose handle is dropped un-waited still delivers: the drop waits for it.
inline void async_dropped_send_still_delivers(DeviceCommunicator& comm) {
  const size_t count = 256 * 1024;
  if (comm.rank() == 0) {
    DeviceBuffer<float> out(values(count, 5));
    {
      PendingOperation send = comm.start_send(span(out), 1, MessageTag::kTest);
    }
    out.upload(std::vector<float>(count, 0.0f));  // safe: the handle is gone, so the send is done
  } else if (comm.rank() == 1) {
    std::this_thread::sleep_for(100ms);
    DeviceBuffer<float> in(count);
    comm.recv(span(in), 0, MessageTag::kTest);
    EXPECT_EQ(in.download(), values(count, 5));
  }
  comm.barrier();
}

// Not NCCL: a receive whose handle is dropped before anything was sent is cancelled: its buffer stays as it was,
// and the message sent afterwards goes to the next receive.
inline void async_dropped_unmatched_receive_is_cancelled(DeviceCommunicator& comm) {
  if (comm.rank() == 1) {
    DeviceBuffer<float> never(values(4, -1));
    const auto start = std::chrono::steady_clock::now();
    {
      PendingOperation recv = comm.start_recv(span(never), 0, MessageTag::kTest);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_EQ(never.download(), values(4, -1));
  }
  comm.barrier();
  if (comm.rank() == 0) {
    DeviceBuffer<float> out(values(4, 9));
    comm.send(span(out), 1, MessageTag::kTest);
  } else if (comm.rank() == 1) {
    DeviceBuffer<float> in(4);
    PendingOperation recv = comm.start_recv(span(in), 0, MessageTag::kTest);
    EXPECT_TRUE(poll_until_done(recv));
    EXPECT_EQ(in.download(), values(4, 9));
  }
  comm.barrier();
}

// Assigning a new operation over a handle finishes the old one first.
inline void async_move_assignment_finishes_the_previous_operation(DeviceCommunicator& comm) {
  const size_t count = 256 * 1024;
  if (comm.rank() == 0) {
    DeviceBuffer<float> first(values(count, 1)), second(values(count, 2));
    PendingOperation op = comm.start_send(span(first), 1, MessageTag::kTest);
    op = comm.start_send(span(second), 1, MessageTag::kTest);
    first.upload(std::vector<float>(count, 0.0f));
    EXPECT_TRUE(poll_until_done(op));
  } else if (comm.rank() == 1) {
    std::this_thread::sleep_for(100ms);
    DeviceBuffer<float> first(count), second(count);
    comm.recv(span(first), 0, MessageTag::kTest);
    comm.recv(span(second), 0, MessageTag::kTest);
    EXPECT_EQ(first.download(), values(count, 1));
    EXPECT_EQ(second.download(), values(count, 2));
  }
  comm.barrier();
}

// The root starts its broadcasts and goes on: it tells the members over `side` (a host communicator with the same
// members) to join only afterwards. A blocking broadcast from every root first sets up NCCL's connections, which an
// NCCL call may otherwise wait for while it is being started.
inline void async_broadcast_from_a_root_that_does_not_wait(DeviceCommunicator& comm, HostCommunicator& side) {
  ASSERT_EQ(side.size(), comm.size());
  for (int root = 0; root < comm.size(); ++root) {
    DeviceBuffer<uint8_t> warm(std::vector<uint8_t>(16, 1));
    comm.broadcast(span(warm), root);
  }
  for (const int root : {0, comm.size() - 1}) {
    constexpr int kBroadcasts = 3;
    Buffers data;
    for (int b = 0; b < kBroadcasts; ++b) {
      const size_t count = static_cast<size_t>(1000 * (b + 1));
      data.push_back(comm.rank() == root ? std::make_unique<DeviceBuffer<float>>(values(count, root * 10 + b))
                                         : std::make_unique<DeviceBuffer<float>>(count));
    }
    if (comm.rank() == root) {
      std::vector<PendingOperation> ops;
      for (auto& d : data) ops.push_back(comm.start_broadcast(span(*d), root));
      int go = 1;
      std::vector<PendingOperation> notes;
      for (int member = 0; member < side.size(); ++member) {
        if (member != root) notes.push_back(side.start_send(host_span(&go, 1), member, MessageTag::kTestOther));
      }
      for (auto& n : notes) EXPECT_TRUE(poll_until_done(n));
      for (auto& op : ops) EXPECT_TRUE(poll_until_done(op));
    } else {
      int go = 0;
      PendingOperation note = side.start_recv(host_span(&go, 1), root, MessageTag::kTestOther);
      EXPECT_TRUE(poll_until_done(note, 20s)) << "the root did not get past its start_broadcast calls";
      std::vector<PendingOperation> ops;
      for (auto& d : data) ops.push_back(comm.start_broadcast(span(*d), root));
      for (auto& op : ops) op.wait();
      for (int b = 0; b < kBroadcasts; ++b) {
        EXPECT_EQ(data[static_cast<size_t>(b)]->download(), values(static_cast<size_t>(1000 * (b + 1)), root * 10 + b));
      }
    }
    comm.barrier();
  }
}

// More than 8 MiB, point to point and broadcast.
inline void async_large_messages(DeviceCommunicator& comm) {
  const size_t count = 9 * 1024 * 1024 / sizeof(float) + 3;
  if (comm.rank() == 0) {
    DeviceBuffer<float> out(values(count, 8));
    PendingOperation send = comm.start_send(span(out), 1, MessageTag::kTest);
    EXPECT_TRUE(poll_until_done(send, 60s));
  } else if (comm.rank() == 1) {
    DeviceBuffer<float> in(count);
    PendingOperation recv = comm.start_recv(span(in), 0, MessageTag::kTest);
    EXPECT_TRUE(poll_until_done(recv, 60s));
    EXPECT_EQ(in.download(), values(count, 8));
  }
  DeviceBuffer<float> all(comm.rank() == 0 ? values(count, 6) : std::vector<float>(count, -1.0f));
  PendingOperation broadcast = comm.start_broadcast(span(all), 0);
  EXPECT_TRUE(poll_until_done(broadcast, 60s));
  EXPECT_EQ(all.download(), values(count, 6));
  comm.barrier();
}

}  // namespace tessera::parallel::device_checks
