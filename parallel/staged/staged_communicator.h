#pragma once
// The staged backend of Communicator: device memory in, device memory out, with the exchange done by a
// host communicator (MPI) through pinned staging buffers: device -> host -> MPI -> host -> device.
// For ranks that share one GPU (NCCL refuses two members on one device) and for machines without NCCL.
// Slower than NCCL (two copies and a stream synchronisation per op) but it works anywhere MPI does.
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "parallel/communicator.h"
#include "parallel/staged/pinned_buffer.h"

namespace tessera::parallel {

class StagedCommunicator final : public Communicator {
 public:
  // `host` moves host memory between the members (usually an MpiCommunicator); this communicator has its
  // members, order and name. `stream` (not owned) orders the copies after the caller's kernels.
  StagedCommunicator(std::unique_ptr<Communicator> host, cudaStream_t stream);

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  const std::string& name() const override { return host_->name(); }

  // All pointers are device pointers; each call returns when the result is in device memory.
  void all_reduce_sum(float* data, size_t count) override;
  void all_reduce_sum(bf16* data, size_t count) override;  // f32 accumulation by the host communicator
  void all_gather(const float* send, float* recv, size_t count) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void send(const void* data, size_t bytes, int peer, MessageTag tag) override;
  void recv(void* data, size_t bytes, int peer, MessageTag tag) override;
  void barrier() override;
  int64_t all_reduce_min(int64_t value) override { return host_->all_reduce_min(value); }  // a host value

  Communicator& host() { return *host_; }

 private:
  void to_host(void* host, const void* device, size_t bytes, const char* op);
  void to_device(void* device, const void* host, size_t bytes, const char* op);
  void check_cuda(cudaError_t status, const char* op, const char* step) const;

  std::unique_ptr<Communicator> host_;
  cudaStream_t stream_;
  PinnedBuffer staging_;
};

}  // namespace tessera::parallel
