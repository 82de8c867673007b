#pragma once
// The data-plane interface: collectives inside a group (a TP group, a pipeline group, the world) and
// point-to-point transfers between its members. Backends: MPI (host memory, the CPU backend), NCCL
// (device memory), staged (device -> host -> MPI -> device). Ranks below are ranks *within the group*.
// The plain calls block; the start_* calls return a PendingOperation at once (parallel/pending_operation.h), so
// that a pipeline stage can compute while its results travel. Collective calls, blocking or not, must be made by
// every member in the same order. Errors are thrown as tessera::Error naming the group, the op and the peer.
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/base/half.h"
#include "parallel/message_tags.h"
#include "parallel/pending_operation.h"

namespace tessera::parallel {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;  // e.g. "tp group of stage 1", used in error messages

  // In-place element-wise sum over all members.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  // bf16 sum; accumulated in f32, rounded once to bf16.
  virtual void all_reduce_sum(bf16* data, size_t count) = 0;
  // recv receives size() * count elements: member r's `count` elements at recv + r * count.
  virtual void all_gather(const float* send, float* recv, size_t count) = 0;
  // Broadcasts `bytes` bytes from member `root` to every member.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void send(const void* data, size_t bytes, int peer, MessageTag tag) = 0;
  virtual void recv(void* data, size_t bytes, int peer, MessageTag tag) = 0;
  virtual void barrier() = 0;
  // The minimum of `value` over the members (a handful of bytes: load-time agreement, not the data plane).
  virtual int64_t all_reduce_min(int64_t value) = 0;

  // Non-blocking forms. Each returns at once; `data` stays the caller's to keep alive and untouched until the
  // handle is done. Between two members, messages with one tag arrive in the order they were started, and
  // receives started with one tag match them in the order they were started. A start_broadcast matches the other
  // members' start_broadcast (never a blocking broadcast), in order. A receive must be exactly as large as the
  // message: a size mismatch is an error, not a truncation.
  virtual PendingOperation start_send(const void* data, size_t bytes, int peer, MessageTag tag);
  virtual PendingOperation start_recv(void* data, size_t bytes, int peer, MessageTag tag);
  virtual PendingOperation start_broadcast(void* data, size_t bytes, int root);
};

}  // namespace tessera::parallel
