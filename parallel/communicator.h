#pragma once
// The data-plane interface: collectives inside a group (a TP group, a pipeline group, the world) and
// point-to-point transfers between its members. Backends: MPI (host memory, the CPU backend), NCCL
// (device memory), staged (device -> host -> MPI -> device). Ranks below are ranks *within the group*.
// Every call is blocking and collective calls must be made by every member in the same order.
// Errors are thrown as tessera::Error naming the group, the op and the peer.
#include <cstddef>
#include <string>

#include "kernels/base/half.h"
#include "parallel/message_tags.h"

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
  // The same broadcast for a member that may wait long (an idle follower waiting for the next step plan): members
  // other than root poll for the message and sleep between polls instead of spinning a core in the library.
  // Every member of one broadcast must use the same call. Backends without a polling wait simply broadcast.
  virtual void broadcast_polling(void* data, size_t bytes, int root) { broadcast(data, bytes, root); }
  virtual void send(const void* data, size_t bytes, int peer, MessageTag tag) = 0;
  virtual void recv(void* data, size_t bytes, int peer, MessageTag tag) = 0;
  virtual void barrier() = 0;
};

}  // namespace tessera::parallel
