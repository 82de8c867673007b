#include "parallel/staged/staged_communicator.h"

#include "kernels/base/error.h"

namespace tessera::parallel {

// One non-blocking op: the host communicator's op on this operation's own staging buffer, and for what lands on
// this member (a receive, a broadcast's non-root members) the copy of that buffer to the device afterwards.
class StagedCommunicator::Operation final : public PendingOperation::Backend {
 public:
  // `bytes` of staging; `land` is where they go on the device once the host op completes (empty: nowhere);
  // `cancel_when_dropped`: a receive, which a dropped handle cancels instead of waiting for.
  Operation(StagedCommunicator& comm, const char* op, size_t bytes, DeviceSpan<std::byte> land,
            bool cancel_when_dropped)
      : comm_(comm), op_(op), land_(land), cancel_when_dropped_(cancel_when_dropped) {
    if (bytes == 0) return;
    buffer_ = comm_.op_buffers_.take(bytes);
    host_ = host_span(static_cast<std::byte*>(buffer_->reserve(bytes)), bytes);
  }
  ~Operation() override {
    host_op_ = PendingOperation();  // finished already on every path; made sure of before the buffer goes
    if (unsafe_) {
      // A failed CUDA call may leave a copy reading this buffer: never reuse it, never free it under the copy.
      static_cast<void>(buffer_.release());
      event_.leak();
    } else {
      comm_.op_buffers_.give_back(std::move(buffer_));
    }
  }
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  HostSpan<std::byte> host() const { return host_; }

  // Device -> the staging buffer on the stream (after the kernels that produced the data), waiting for just that
  // copy: the host communicator may read the buffer as soon as its op starts.
  void stage(DeviceSpan<const std::byte> device) {
    if (host_.empty()) return;
    event_ = PooledEvent(comm_.events_);
    check(cudaMemcpyAsync(host_.data(), device.data(), host_.size(), cudaMemcpyDeviceToHost, comm_.stream_),
          "device-to-host copy");
    check(cudaEventRecord(event_.get(), comm_.stream_), "device-to-host copy");
    check(cudaEventSynchronize(event_.get()), "device-to-host copy");
  }
  void start(PendingOperation host_op) { host_op_ = std::move(host_op); }

  bool test() override {
    if (!landing_) {
      if (!host_op_.test()) return false;  // throws the host communicator's errors
      if (!start_landing()) return true;
    }
    const cudaError_t status = cudaEventQuery(event_.get());
    if (status == cudaErrorNotReady) return false;
    check(status, "host-to-device copy");
    return true;
  }

  void wait() override {
    if (!landing_) {
      host_op_.wait();
      if (!start_landing()) return;
    }
    check(cudaEventSynchronize(event_.get()), "host-to-device copy");
  }

  void abandon() noexcept override {
    if (!landing_) {
      if (cancel_when_dropped_) {
        host_op_ = PendingOperation();  // the host op's own abandon: cancelled if unmatched; nothing lands
        return;
      }
      try {
        host_op_.wait();  // a send or a broadcast: its peers may still need it
        if (!start_landing()) return;
      } catch (...) {
        return;  // failed: nothing is pending any more (unsafe_ is set if a copy may be)
      }
    }
    if (cudaEventSynchronize(event_.get()) != cudaSuccess) unsafe_ = true;
  }

 private:
  // After the host op: the staging buffer -> device on the stream. False when nothing lands on this member.
  bool start_landing() {
    if (land_.empty()) return false;
    event_ = PooledEvent(comm_.events_);
    landing_ = true;
    check(cudaMemcpyAsync(land_.data(), host_.data(), host_.size(), cudaMemcpyHostToDevice, comm_.stream_),
          "host-to-device copy");
    check(cudaEventRecord(event_.get(), comm_.stream_), "host-to-device copy");
    return true;
  }
  void check(cudaError_t status, const char* step) {
    if (status == cudaSuccess) return;
    unsafe_ = true;
    comm_.check_cuda(status, op_, step);
  }

  StagedCommunicator& comm_;
  const char* op_;
  DeviceSpan<std::byte> land_;
  bool cancel_when_dropped_;
  std::unique_ptr<PinnedBuffer> buffer_;  // given back only once the host op and the copies are done
  HostSpan<std::byte> host_;
  PooledEvent event_;
  PendingOperation host_op_;
  bool landing_ = false;
  bool unsafe_ = false;
};

StagedCommunicator::StagedCommunicator(std::unique_ptr<HostCommunicator> host, cudaStream_t stream)
    : host_(std::move(host)), stream_(stream) {
  TESSERA_CHECK(host_ != nullptr, "StagedCommunicator needs a host communicator");
}

StagedCommunicator::~StagedCommunicator() = default;

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

PendingOperation StagedCommunicator::start_send(ConstBytes data, int peer, MessageTag tag) {
  auto op = std::make_unique<Operation>(*this, "send", data.size(), Bytes(), false);
  op->stage(data);
  op->start(host_->start_send(op->host(), peer, tag));
  return PendingOperation(std::move(op));
}

PendingOperation StagedCommunicator::start_recv(Bytes data, int peer, MessageTag tag) {
  auto op = std::make_unique<Operation>(*this, "recv", data.size(), data, true);
  op->start(host_->start_recv(op->host(), peer, tag));
  return PendingOperation(std::move(op));
}

PendingOperation StagedCommunicator::start_broadcast(Bytes data, int root) {
  TESSERA_CHECK(root >= 0 && root < size(), "staged broadcast on ", name(), ": root ", root,
                " is outside the group of ", size());
  const bool from_here = rank() == root;
  auto op = std::make_unique<Operation>(*this, "broadcast", data.size(), from_here ? Bytes() : data, false);
  if (from_here) op->stage(data);
  op->start(host_->start_broadcast(op->host(), root));
  return PendingOperation(std::move(op));
}

}  // namespace tessera::parallel
