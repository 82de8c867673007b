#pragma once
// The staged backend of DeviceCommunicator: device memory in, device memory out, with the exchange done by a
// host communicator (MPI) through pinned staging buffers: device -> host -> MPI -> host -> device.
// For ranks that share one GPU (NCCL refuses two members on one device) and for machines without NCCL.
// Slower than NCCL (two copies and a stream synchronisation per op) but it works anywhere MPI does.
//
// The non-blocking ops keep the host communicator's contract (tags, ordering, size checks, cancellation) and
// each owns a pinned staging buffer (from a pool) until it is done:
//   start_send       device -> its buffer on the stream, waits for just that copy, then the host start_send;
//                    done when the host send is.
//   start_recv       the host start_recv into its buffer; once that completes (seen by test() or wait()), its
//                    buffer -> device on the stream; done when that copy is. A dropped receive that has not
//                    completed is cancelled and never writes the device buffer.
//   start_broadcast  the root as start_send, the others as start_recv (a broadcast is never cancelled).
// Errors name the group, the op, the member and the step (host communicator errors are its own, naming the peer).
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "parallel/communicator.h"
#include "parallel/cuda/event_pool.h"
#include "parallel/staged/pinned_buffer.h"

namespace tessera::parallel {

class StagedCommunicator final : public DeviceCommunicator {
 public:
  // `host` moves host memory between the members (usually an MpiCommunicator); this communicator has its
  // members, order and name. `stream` (not owned) orders the copies after the caller's kernels.
  StagedCommunicator(std::unique_ptr<HostCommunicator> host, cudaStream_t stream);
  ~StagedCommunicator() override;
  StagedCommunicator(const StagedCommunicator&) = delete;
  StagedCommunicator& operator=(const StagedCommunicator&) = delete;

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  const std::string& name() const override { return host_->name(); }

  // Each call returns when the result is in device memory.
  void all_reduce_sum(Span<float> data) override;
  void all_reduce_sum(Span<bf16> data) override;  // f32 accumulation by the host communicator
  void all_gather(Span<const float> send, Span<float> recv) override;
  void broadcast(Bytes data, int root) override;
  void send(ConstBytes data, int peer, MessageTag tag) override;
  void recv(Bytes data, int peer, MessageTag tag) override;
  void barrier() override;
  int64_t all_reduce_min(int64_t value) override { return host_->all_reduce_min(value); }  // a host value

  [[nodiscard]] PendingOperation start_send(ConstBytes data, int peer, MessageTag tag) override;
  [[nodiscard]] PendingOperation start_recv(Bytes data, int peer, MessageTag tag) override;
  [[nodiscard]] PendingOperation start_broadcast(Bytes data, int root) override;

  HostCommunicator& host() { return *host_; }
  size_t idle_staging_buffers() const { return op_buffers_.idle(); }  // for tests: buffers come back when done
  size_t events_created() const { return events_.created(); }  // for tests: the pool reuses its events

 private:
  class Operation;  // PendingOperation::Backend of the non-blocking ops

  void to_host(HostSpan<std::byte> host, DeviceSpan<const std::byte> device, const char* op);
  void to_device(DeviceSpan<std::byte> device, HostSpan<const std::byte> host, const char* op);
  template <class T>
  HostSpan<T> staging(size_t count);  // the blocking ops' staging buffer as `count` elements
  void check_cuda(cudaError_t status, const char* op, const char* step) const;

  std::unique_ptr<HostCommunicator> host_;
  cudaStream_t stream_;
  PinnedBuffer staging_;          // the blocking ops' (one at a time)
  PinnedBufferPool op_buffers_;   // the non-blocking ops' (one each while in flight)
  CudaEventPool events_;          // their copies' completion
};

}  // namespace tessera::parallel
