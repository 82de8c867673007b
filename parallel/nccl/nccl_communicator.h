#pragma once
// The NCCL backend of DeviceCommunicator: collectives and point-to-point transfers on *device* memory, enqueued
// on one CUDA stream. Every member calls each op in the same order, as with every communicator.
//
// Nothing here can hang a rank forever: the communicator runs in NCCL's non-blocking mode, and every wait
// (initialisation, enqueue, completion) polls NCCL's async error state and the stream under a watchdog.
// On an NCCL error or a timeout the communicator is aborted (ncclCommAbort) and the op throws a
// tessera::Error naming the group, the op, this member and the peer; afterwards every op throws.
//
// The non-blocking ops (start_send, start_recv, start_broadcast) enqueue the NCCL call on the stream like the
// blocking ones, record an event (from a small pool) behind it and return; the handle is done when the event is
// reached. What NCCL adds to the DeviceCommunicator contract:
//   - No tags: between two members, messages match in the order they were started, whatever their tags.
//   - One stream: every op runs on the device in the order it was started on this member. A receive holds up the
//     ops started after it until its message arrives, so two members that exchange must not both start their
//     receive first (start the send first on one of them, as with blocking calls).
//   - No size check: a receive of another size than the message is not detected (keep the sizes agreed).
//   - No cancellation: a dropped handle waits for its op up to the watchdog's timeout, then aborts the
//     communicator (an unmatched receive therefore costs the communicator; it never hangs the rank).
//   - Starting waits, under the watchdog, until NCCL has accepted the call (normally at once; the first exchange
//     with a peer may wait until that peer takes part, while NCCL connects the two).
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "parallel/communicator.h"
#include "parallel/cuda/event_pool.h"
#include "parallel/nccl/watchdog.h"

namespace tessera::parallel {

struct NcclOptions {
  WatchdogOptions watchdog;  // timeout of every blocking wait, 30 s by default
  // The Communicator contract for bf16 all-reduce: accumulate in f32, round once. NCCL's native bf16
  // reduction rounds after every hop; set false to take it anyway (half the bytes on the wire).
  bool bf16_accumulate_f32 = true;
};

class NcclCommunicator final : public DeviceCommunicator {
 public:
  // Collective over `bootstrap`: member 0 creates the NCCL unique id and broadcasts it over MPI; the NCCL
  // communicator has the same members in the same order and takes bootstrap's name for messages. The
  // caller has already selected this rank's device (cudaSetDevice); `stream` (not owned) carries every op.
  NcclCommunicator(HostCommunicator& bootstrap, cudaStream_t stream, NcclOptions options = {});
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }

  // Each call returns when the op has completed on the stream.
  void all_reduce_sum(Span<float> data) override;
  void all_reduce_sum(Span<bf16> data) override;
  void all_gather(Span<const float> send, Span<float> recv) override;
  void broadcast(Bytes data, int root) override;
  // NCCL has no tags: messages between two members arrive in the order they were sent; `tag` is ignored.
  void send(ConstBytes data, int peer, MessageTag tag) override;
  void recv(Bytes data, int peer, MessageTag tag) override;
  void barrier() override;
  int64_t all_reduce_min(int64_t value) override;  // a host value in and out (staged through a device word)

  // test() polls the op's event and NCCL's async error; wait() polls them under the watchdog (its timeout counted
  // from the wait). An NCCL error aborts the communicator and throws, with the messages of the blocking ops.
  [[nodiscard]] PendingOperation start_send(ConstBytes data, int peer, MessageTag tag) override;
  [[nodiscard]] PendingOperation start_recv(Bytes data, int peer, MessageTag tag) override;
  [[nodiscard]] PendingOperation start_broadcast(Bytes data, int root) override;

  // Enqueue without waiting (to overlap with compute); synchronize() then waits under the watchdog.
  void enqueue_all_reduce_sum(Span<float> data);
  void synchronize();

  bool aborted() const { return aborted_; }
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  ncclComm_t handle() const { return comm_; }
  size_t events_created() const { return events_.created(); }  // for tests: the pool reuses its events

 private:
  // "NCCL all_reduce on tp group of stage 0" and "member 1 of 2 on device 0, peer 0, 4096 bytes".
  std::string what(const char* op) const;
  std::string context(int peer, size_t amount, const char* unit) const;
  void check_usable(const char* op) const;
  void check_peer(int peer, const char* op) const;
  // Waits for a non-blocking NCCL call to be enqueued (ncclInProgress -> ncclSuccess).
  void finish_call(ncclResult_t result, const char* op, int peer, size_t amount, const char* unit);
  // Waits for the stream to drain.
  void wait_stream(const char* op, int peer, size_t amount, const char* unit);
  void abort_comm() noexcept;
  // Where an op tracked by `event` is: done, pending, or failed (with why).
  PollResult poll_event(cudaEvent_t event) const;
  // Records `event` behind the op just enqueued and hands it to a PendingOperation.
  PendingOperation track(PooledEvent event, const char* op, int peer, size_t bytes);
  float* scratch(size_t count);  // device f32 scratch for bf16 reductions, grown on demand

  std::string name_;
  int rank_ = 0;
  int size_ = 1;
  int device_ = -1;
  cudaStream_t stream_;
  NcclOptions options_;
  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
  float* scratch_ = nullptr;
  size_t scratch_count_ = 0;
  float* barrier_word_ = nullptr;
  int64_t* min_word_ = nullptr;
  std::string pending_op_ = "enqueued op";  // what synchronize() is waiting for, for its messages
  CudaEventPool events_;                    // one per non-blocking op in flight, reused

  class Operation;  // PendingOperation::Backend of the non-blocking ops
};

}  // namespace tessera::parallel
