#pragma once
// The data-plane interface: collectives inside a group (a TP group, a pipeline group, the world) and
// point-to-point transfers between its members. Ranks below are ranks *within the group*.
//
// Two kinds, told apart by the memory they move (parallel/memory_space.h):
//   HostCommunicator   = BasicCommunicator<MemorySpace::kHost>: host memory. Backend: MPI (parallel/mpi/). The CPU
//                        runtime's groups, the pipeline, the step plan channel, load-time agreement.
//   DeviceCommunicator = BasicCommunicator<MemorySpace::kDevice>: device memory. Backends: NCCL (parallel/nccl/) and
//                        staged (device -> host -> MPI -> device, parallel/staged/). The CUDA stage's TP group.
// Every buffer is a BufferSpan of the communicator's memory space, so that a host buffer handed to a device
// communicator (or the reverse, or a raw pointer) does not compile.
//
// The plain calls block. The start_* calls return a PendingOperation without waiting for the peer
// (parallel/pending_operation.h), so that a pipeline stage can compute while its results travel; every backend has
// its own (what a start may still wait for, a local copy or NCCL accepting the call, is in the backend's header).
// Collective calls, blocking or not, must be made by every member in the same order. Errors are thrown as
// tessera::Error naming the group, the op and the peer.
//
// Lifetimes: a communicator outlives every handle it returned (finish or drop the handles first). Threads: one
// communicator and its handles are used by one thread (the engine thread).
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/base/half.h"
#include "parallel/memory_space.h"
#include "parallel/message_tags.h"
#include "parallel/pending_operation.h"

namespace tessera::parallel {

template <MemorySpace S>
class BasicCommunicator {
 public:
  static constexpr MemorySpace kSpace = S;
  template <class T>
  using Span = BufferSpan<S, T>;
  using Bytes = BufferSpan<S, std::byte>;
  using ConstBytes = BufferSpan<S, const std::byte>;

  virtual ~BasicCommunicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;  // e.g. "tp group of stage 1", used in error messages

  // In-place element-wise sum over all members.
  virtual void all_reduce_sum(Span<float> data) = 0;
  // bf16 sum; accumulated in f32, rounded once to bf16.
  virtual void all_reduce_sum(Span<bf16> data) = 0;
  // recv.size() must be size() * send.size(): member r's elements land at recv[r * send.size()].
  virtual void all_gather(Span<const float> send, Span<float> recv) = 0;
  // Broadcasts data's bytes from member `root` to every member (each passes a buffer of the same size).
  virtual void broadcast(Bytes data, int root) = 0;
  virtual void send(ConstBytes data, int peer, MessageTag tag) = 0;
  // The message must be exactly data.size_bytes() long (where the backend can tell, a mismatch is an error).
  virtual void recv(Bytes data, int peer, MessageTag tag) = 0;
  virtual void barrier() = 0;
  // The minimum of `value` over the members. A host value for every kind (a handful of bytes: load-time agreement,
  // not the data plane).
  virtual int64_t all_reduce_min(int64_t value) = 0;

  // Non-blocking forms. Each returns at once with the operation started; the buffer stays the caller's to keep
  // alive and untouched until the handle is done (test() returned true, wait() returned, or the handle was
  // destroyed). Between two members, messages with one tag arrive in the order they were started, and receives
  // started with one tag match them in the order they were started. A start_broadcast matches the other members'
  // start_broadcast (never a blocking broadcast), in order. A receive must be exactly as large as the message: a
  // size mismatch is an error, not a truncation. What a backend adds to this (NCCL: no tags, one stream, no size
  // check, no cancellation) is in its header. Pure virtual: a backend that completed them at the call would
  // silently serialise a pipeline.
  [[nodiscard]] virtual PendingOperation start_send(ConstBytes data, int peer, MessageTag tag) = 0;
  [[nodiscard]] virtual PendingOperation start_recv(Bytes data, int peer, MessageTag tag) = 0;
  [[nodiscard]] virtual PendingOperation start_broadcast(Bytes data, int root) = 0;
};

using HostCommunicator = BasicCommunicator<MemorySpace::kHost>;
using DeviceCommunicator = BasicCommunicator<MemorySpace::kDevice>;

// The all_gather size rule, checked the same way by every backend: throws tessera::Error naming the group.
template <MemorySpace S>
void check_all_gather_sizes(const BasicCommunicator<S>& comm, size_t send_count, size_t recv_count) {
  TESSERA_CHECK(recv_count == send_count * static_cast<size_t>(comm.size()), "all_gather on ", comm.name(), ": ",
                recv_count, " elements to receive, but ", comm.size(), " members of ", send_count, " make ",
                send_count * static_cast<size_t>(comm.size()));
}

}  // namespace tessera::parallel
