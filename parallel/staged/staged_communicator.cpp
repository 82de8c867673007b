#include "parallel/staged/staged_communicator.h"

#include "kernels/base/error.h"

namespace tessera::parallel {

StagedCommunicator::StagedCommunicator(std::unique_ptr<HostCommunicator> host, cudaStream_t stream)
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
void StagedCommunicator::to_host(HostSpan<std::byte> host, DeviceSpan<const std::byte> device, const char* op) {
  TESSERA_CHECK(host.size() == device.size(), "staged ", op, ": ", device.size(), " device bytes into ", host.size());
  if (host.empty()) return;
  check_cuda(cudaMemcpyAsync(host.data(), device.data(), host.size(), cudaMemcpyDeviceToHost, stream_), op,
             "device-to-host copy");
  check_cuda(cudaStreamSynchronize(stream_), op, "device-to-host copy");
}

// Synchronises too: the staging buffer is reused by the next op as soon as this one returns.
void StagedCommunicator::to_device(DeviceSpan<std::byte> device, HostSpan<const std::byte> host, const char* op) {
  TESSERA_CHECK(host.size() == device.size(), "staged ", op, ": ", host.size(), " host bytes into ", device.size());
  if (host.empty()) return;
  check_cuda(cudaMemcpyAsync(device.data(), host.data(), host.size(), cudaMemcpyHostToDevice, stream_), op,
             "host-to-device copy");
  check_cuda(cudaStreamSynchronize(stream_), op, "host-to-device copy");
}

template <class T>
HostSpan<T> StagedCommunicator::staging(size_t count) {
  return host_span(static_cast<T*>(staging_.reserve(count * sizeof(T))), count);
}

void StagedCommunicator::all_reduce_sum(Span<float> data) {
  const HostSpan<float> host = staging<float>(data.size());
  to_host(host, data, "all_reduce");
  host_->all_reduce_sum(host);
  to_device(data, host, "all_reduce");
}

void StagedCommunicator::all_reduce_sum(Span<bf16> data) {
  const HostSpan<bf16> host = staging<bf16>(data.size());
  to_host(host, data, "all_reduce");
  host_->all_reduce_sum(host);
  to_device(data, host, "all_reduce");
}

void StagedCommunicator::all_gather(Span<const float> send, Span<float> recv) {
  check_all_gather_sizes(*this, send.size(), recv.size());
  // One buffer, two regions: MPI forbids the send and receive buffers of a gather to overlap.
  const HostSpan<float> host = staging<float>(recv.size() + send.size());
  const HostSpan<float> host_recv = host.subspan(0, recv.size());
  const HostSpan<float> host_send = host.subspan(recv.size());
  to_host(host_send, send, "all_gather");
  host_->all_gather(host_send, host_recv);
  to_device(recv, host_recv, "all_gather");
}

void StagedCommunicator::broadcast(Bytes data, int root) {
  TESSERA_CHECK(root >= 0 && root < size(), "staged broadcast on ", name(), ": root ", root,
                " is outside the group of ", size());
  const HostSpan<std::byte> host = staging<std::byte>(data.size());
  if (rank() == root) to_host(host, data, "broadcast");
  host_->broadcast(host, root);
  if (rank() != root) to_device(data, host, "broadcast");
}

void StagedCommunicator::send(ConstBytes data, int peer, MessageTag tag) {
  const HostSpan<std::byte> host = staging<std::byte>(data.size());
  to_host(host, data, "send");
  host_->send(host, peer, tag);
}

void StagedCommunicator::recv(Bytes data, int peer, MessageTag tag) {
  const HostSpan<std::byte> host = staging<std::byte>(data.size());
  host_->recv(host, peer, tag);
  to_device(data, host, "recv");
}

void StagedCommunicator::barrier() {
  // Work enqueued before the barrier is finished on this member before it waits for the others.
  check_cuda(cudaStreamSynchronize(stream_), "barrier", "stream synchronisation");
  host_->barrier();
}

}  // namespace tessera::parallel
