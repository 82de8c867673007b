#include "parallel/staged/staged_communicator.h"

#include "kernels/base/error.h"

namespace tessera::parallel {

StagedCommunicator::StagedCommunicator(std::unique_ptr<Communicator> host, cudaStream_t stream)
    : host_(std::move(host)), stream_(stream) {
  TESSERA_CHECK(host_ != nullptr, "StagedCommunicator needs a host communicator");
}

void StagedCommunicator::check_cuda(cudaError_t status, const char* op, const char* step) const {
  if (status == cudaSuccess) return;
  fail("staged ", op, " on ", name(), " (member ", rank(), " of ", size(), ") failed at ", step, ": ",
       cudaGetErrorString(status));
}

// Copies are enqueued on the caller's stream, so they start after the kernels that produced the data,
// and the synchronisation makes the staging buffer safe to hand to MPI.
void StagedCommunicator::to_host(void* host, const void* device, size_t bytes, const char* op) {
  if (bytes == 0) return;
  check_cuda(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream_), op, "device-to-host copy");
  check_cuda(cudaStreamSynchronize(stream_), op, "device-to-host copy");
}

// Synchronises too: the staging buffer is reused by the next op as soon as this one returns.
void StagedCommunicator::to_device(void* device, const void* host, size_t bytes, const char* op) {
  if (bytes == 0) return;
  check_cuda(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream_), op, "host-to-device copy");
  check_cuda(cudaStreamSynchronize(stream_), op, "host-to-device copy");
}

void StagedCommunicator::all_reduce_sum(float* data, size_t count) {
  auto* host = static_cast<float*>(staging_.reserve(count * sizeof(float)));
  to_host(host, data, count * sizeof(float), "all_reduce");
  host_->all_reduce_sum(host, count);
  to_device(data, host, count * sizeof(float), "all_reduce");
}

void StagedCommunicator::all_reduce_sum(bf16* data, size_t count) {
  auto* host = static_cast<bf16*>(staging_.reserve(count * sizeof(bf16)));
  to_host(host, data, count * sizeof(bf16), "all_reduce");
  host_->all_reduce_sum(host, count);
  to_device(data, host, count * sizeof(bf16), "all_reduce");
}

void StagedCommunicator::all_gather(const float* send, float* recv, size_t count) {
  // One buffer, two regions: MPI forbids the send and receive buffers of a gather to overlap.
  const size_t gathered = static_cast<size_t>(size()) * count;
  auto* host = static_cast<float*>(staging_.reserve((gathered + count) * sizeof(float)));
  float* host_send = host + gathered;
  to_host(host_send, send, count * sizeof(float), "all_gather");
  host_->all_gather(host_send, host, count);
  to_device(recv, host, gathered * sizeof(float), "all_gather");
}

void StagedCommunicator::broadcast(void* data, size_t bytes, int root) {
  TESSERA_CHECK(root >= 0 && root < size(), "staged broadcast on ", name(), ": root ", root,
                " is outside the group of ", size());
  void* host = staging_.reserve(bytes);
  if (rank() == root) to_host(host, data, bytes, "broadcast");
  host_->broadcast(host, bytes, root);
  if (rank() != root) to_device(data, host, bytes, "broadcast");
}

void StagedCommunicator::send(const void* data, size_t bytes, int peer, MessageTag tag) {
  void* host = staging_.reserve(bytes);
  to_host(host, data, bytes, "send");
  host_->send(host, bytes, peer, tag);
}

void StagedCommunicator::recv(void* data, size_t bytes, int peer, MessageTag tag) {
  void* host = staging_.reserve(bytes);
  host_->recv(host, bytes, peer, tag);
  to_device(data, host, bytes, "recv");
}

void StagedCommunicator::barrier() {
  // Work enqueued before the barrier is finished on this member before it waits for the others.
  check_cuda(cudaStreamSynchronize(stream_), "barrier", "stream synchronisation");
  host_->barrier();
}

}  // namespace tessera::parallel
