#pragma once
// The value checks every device-memory Communicator (NCCL, staged) must pass, written once: each rank fills
// device buffers with values only it knows how to make, runs the op, and compares with what it computes alone.
// Call them from a test body under mpirun; every rank of the communicator must call the same check.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

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

}  // namespace tessera::parallel::device_checks
