#include "parallel/nccl/nccl_communicator.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include "kernels/base/error.h"
#include "kernels/cuda/convert.h"
#include "kernels/cuda/cuda_check.h"

namespace tessera::parallel {
namespace {

// What member 0 broadcasts: the id, or why it could not make one (so that every member throws the
// same error instead of the others waiting for an id that never comes).
struct IdMessage {
  int ok = 0;
  ncclUniqueId id{};
  char error[256] = {};
};

PollResult poll_nccl(ncclComm_t comm) {
  ncclResult_t async = ncclSuccess;
  const ncclResult_t status = ncclCommGetAsyncError(comm, &async);
  if (status != ncclSuccess) return {PollState::kFailed, concat("ncclCommGetAsyncError: ", ncclGetErrorString(status))};
  if (async == ncclInProgress) return {PollState::kPending, {}};
  if (async != ncclSuccess) {
    return {PollState::kFailed, concat(ncclGetErrorString(async), " (", ncclGetLastError(comm), ")")};
  }
  return {PollState::kDone, {}};
}

}  // namespace

// One non-blocking op: done when the event recorded behind it on the stream is reached.
class NcclCommunicator::Operation final : public PendingOperation::Backend {
 public:
  Operation(NcclCommunicator& comm, PooledEvent event, const char* op, int peer, size_t bytes)
      : comm_(comm), event_(std::move(event)), op_(op), peer_(peer), bytes_(bytes) {}

  bool test() override {
    const PollResult result = comm_.poll_event(event_.get());
    if (result.state == PollState::kPending) return false;
    if (result.state == PollState::kFailed) {
      comm_.abort_comm();
      fail(comm_.what(op_), " failed (", context(), "): ", result.error);
    }
    return true;
  }

  void wait() override {
    wait_with_watchdog([this] { return comm_.poll_event(event_.get()); }, [this] { comm_.abort_comm(); },
                       comm_.what(op_), context(), comm_.options_.watchdog);
  }

  // Bounded: NCCL cannot cancel one op, so an op that does not finish within the watchdog's timeout (a receive
  // nobody sends to, a dead peer) costs the communicator instead of the rank.
  void abandon() noexcept override {
    using Clock = std::chrono::steady_clock;
    const WatchdogOptions& options = comm_.options_.watchdog;
    const auto start = Clock::now();
    for (;;) {
      const PollResult result = comm_.poll_event(event_.get());
      if (result.state == PollState::kDone) return;
      const auto now = Clock::now();
      if (result.state == PollState::kFailed || now - start >= options.timeout) {
        comm_.abort_comm();
        return;
      }
      if (now - start > options.spin) std::this_thread::sleep_for(options.sleep);
    }
  }

 private:
  std::string context() const { return comm_.context(peer_, bytes_, "bytes"); }

  NcclCommunicator& comm_;
  PooledEvent event_;
  const char* op_;
  int peer_;
  size_t bytes_;
};

NcclCommunicator::NcclCommunicator(HostCommunicator& bootstrap, cudaStream_t stream, NcclOptions options)
    : name_(bootstrap.name()), rank_(bootstrap.rank()), size_(bootstrap.size()), stream_(stream),
      options_(options) {
  TESSERA_CUDA_CHECK(cudaGetDevice(&device_));

  IdMessage message;
  if (rank_ == 0) {
    const ncclResult_t status = ncclGetUniqueId(&message.id);
    message.ok = status == ncclSuccess ? 1 : 0;
    if (!message.ok) std::snprintf(message.error, sizeof message.error, "%s", ncclGetErrorString(status));
  }
  bootstrap.broadcast(host_span(&message, 1), 0);
  TESSERA_CHECK(message.ok == 1, what("init"), ": member 0 could not create an NCCL unique id: ", message.error);

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // every wait goes through the watchdog instead of blocking inside NCCL
  const ncclResult_t status = ncclCommInitRankConfig(&comm_, size_, message.id, rank_, &config);
  finish_call(status, "init", -1, 0, nullptr);
  TESSERA_CUDA_CHECK(cudaMalloc(&barrier_word_, sizeof(float)));
  TESSERA_CUDA_CHECK(cudaMemset(barrier_word_, 0, sizeof(float)));
  TESSERA_CUDA_CHECK(cudaMalloc(&min_word_, sizeof(int64_t)));
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ != nullptr && !aborted_) {
    // Finalize flushes outstanding work. It is non-blocking, so the watchdog bounds it: a dead peer
    // cannot hang the process at exit (on timeout the communicator is aborted instead).
    try {
      finish_call(ncclCommFinalize(comm_), "finalize", -1, 0, nullptr);
    } catch (const Error&) {
      // Already aborted by finish_call; destructors do not throw.
    }
    if (!aborted_) ncclCommDestroy(comm_);
  }
  if (scratch_ != nullptr) cudaFree(scratch_);
  if (barrier_word_ != nullptr) cudaFree(barrier_word_);
  if (min_word_ != nullptr) cudaFree(min_word_);
}

std::string NcclCommunicator::what(const char* op) const { return concat("NCCL ", op, " on ", name_); }

std::string NcclCommunicator::context(int peer, size_t amount, const char* unit) const {
  std::string text = concat("member ", rank_, " of ", size_, " on device ", device_);
  if (peer >= 0) text += concat(", peer ", peer);
  if (unit != nullptr) text += concat(", ", amount, " ", unit);
  return text;
}

void NcclCommunicator::check_usable(const char* op) const {
  TESSERA_CHECK(!aborted_, what(op), " (", context(-1, 0, nullptr),
                "): the communicator was aborted after an earlier error or timeout");
}

void NcclCommunicator::check_peer(int peer, const char* op) const {
  TESSERA_CHECK(peer >= 0 && peer < size_, what(op), ": peer ", peer, " is outside the group of ", size_);
  TESSERA_CHECK(peer != rank_, what(op), ": member ", rank_, " cannot exchange with itself");
}

void NcclCommunicator::abort_comm() noexcept {
  if (comm_ != nullptr && !aborted_) {
    ncclCommAbort(comm_);
    aborted_ = true;
  }
}

void NcclCommunicator::finish_call(ncclResult_t result, const char* op, int peer, size_t amount, const char* unit) {
  if (result == ncclSuccess) return;
  if (result != ncclInProgress) {
    const std::string detail = comm_ != nullptr ? concat(" (", ncclGetLastError(comm_), ")") : std::string();
    abort_comm();
    fail(what(op), " failed (", context(peer, amount, unit), "): ", ncclGetErrorString(result), detail);
  }
  wait_with_watchdog([this] { return poll_nccl(comm_); }, [this] { abort_comm(); }, what(op),
                     context(peer, amount, unit), options_.watchdog);
}

void NcclCommunicator::wait_stream(const char* op, int peer, size_t amount, const char* unit) {
  const auto poll = [this]() -> PollResult {
    const cudaError_t status = cudaStreamQuery(stream_);
    if (status == cudaSuccess) return {PollState::kDone, {}};
    if (status != cudaErrorNotReady) return {PollState::kFailed, concat("CUDA: ", cudaGetErrorString(status))};
    PollResult nccl = poll_nccl(comm_);
    if (nccl.state == PollState::kFailed) return nccl;
    return {PollState::kPending, {}};
  };
  wait_with_watchdog(poll, [this] { abort_comm(); }, what(op), context(peer, amount, unit), options_.watchdog);
}

PollResult NcclCommunicator::poll_event(cudaEvent_t event) const {
  if (aborted_) return {PollState::kFailed, "the communicator was aborted after an earlier error or timeout"};
  const cudaError_t status = cudaEventQuery(event);
  if (status != cudaSuccess && status != cudaErrorNotReady) {
    return {PollState::kFailed, concat("CUDA: ", cudaGetErrorString(status))};
  }
  // NCCL's error state first: an op that ended because the communicator failed is not done.
  PollResult nccl = poll_nccl(comm_);
  if (nccl.state == PollState::kFailed) return nccl;
  return {status == cudaSuccess ? PollState::kDone : PollState::kPending, {}};
}

PendingOperation NcclCommunicator::track(PooledEvent event, const char* op, int peer, size_t bytes) {
  const cudaError_t status = cudaEventRecord(event.get(), stream_);
  if (status != cudaSuccess) {
    // The op is on the stream but cannot be tracked: finish it here (as the blocking call would), so that no
    // operation is left running behind a handle that says it is done.
    cudaGetLastError();
    wait_stream(op, peer, bytes, "bytes");
    return {};
  }
  return PendingOperation(std::make_unique<Operation>(*this, std::move(event), op, peer, bytes));
}

PendingOperation NcclCommunicator::start_send(ConstBytes data, int peer, MessageTag tag) {
  check_usable("send");
  check_peer(peer, "send");
  static_cast<void>(tag);
  PooledEvent event(events_);  // first: a failure to get one leaves nothing in flight
  finish_call(ncclSend(data.data(), data.size(), ncclUint8, peer, comm_, stream_), "send", peer, data.size(), "bytes");
  return track(std::move(event), "send", peer, data.size());
}

PendingOperation NcclCommunicator::start_recv(Bytes data, int peer, MessageTag tag) {
  check_usable("recv");
  check_peer(peer, "recv");
  static_cast<void>(tag);
  PooledEvent event(events_);
  finish_call(ncclRecv(data.data(), data.size(), ncclUint8, peer, comm_, stream_), "recv", peer, data.size(), "bytes");
  return track(std::move(event), "recv", peer, data.size());
}

PendingOperation NcclCommunicator::start_broadcast(Bytes data, int root) {
  check_usable("broadcast");
  TESSERA_CHECK(root >= 0 && root < size_, what("broadcast"), ": root ", root, " is outside the group of ", size_);
  PooledEvent event(events_);
  finish_call(ncclBroadcast(data.data(), data.data(), data.size(), ncclUint8, root, comm_, stream_), "broadcast", root,
              data.size(), "bytes");
  return track(std::move(event), "broadcast", root, data.size());
}

float* NcclCommunicator::scratch(size_t count) {
  if (count > scratch_count_) {
    if (scratch_ != nullptr) TESSERA_CUDA_CHECK(cudaFree(scratch_));
    scratch_ = nullptr;
    scratch_count_ = 0;
    TESSERA_CUDA_CHECK(cudaMalloc(&scratch_, count * sizeof(float)));
    scratch_count_ = count;
  }
  return scratch_;
}

void NcclCommunicator::enqueue_all_reduce_sum(Span<float> span) {
  check_usable("all_reduce");
  float* data = span.data();
  const size_t count = span.size();
  finish_call(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_), "all_reduce", -1, count,
              "f32 elements");
  pending_op_ = "all_reduce";
}

void NcclCommunicator::synchronize() {
  check_usable(pending_op_.c_str());
  wait_stream(pending_op_.c_str(), -1, 0, nullptr);
}

void NcclCommunicator::all_reduce_sum(Span<float> span) {
  check_usable("all_reduce");
  float* data = span.data();
  const size_t count = span.size();
  finish_call(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_), "all_reduce", -1, count,
              "f32 elements");
  wait_stream("all_reduce", -1, count, "f32 elements");
}

void NcclCommunicator::all_reduce_sum(Span<bf16> span) {
  check_usable("all_reduce");
  bf16* data = span.data();
  const size_t count = span.size();
  auto* device_bf16 = reinterpret_cast<__nv_bfloat16*>(data);
  if (!options_.bf16_accumulate_f32) {
    finish_call(ncclAllReduce(data, data, count, ncclBfloat16, ncclSum, comm_, stream_), "all_reduce", -1, count,
                "bf16 elements");
  } else if (count > 0) {
    float* wide = scratch(count);
    kernels::cuda::bf16_to_f32(device_bf16, wide, count, stream_);
    finish_call(ncclAllReduce(wide, wide, count, ncclFloat32, ncclSum, comm_, stream_), "all_reduce", -1, count,
                "bf16 elements");
    kernels::cuda::f32_to_bf16(wide, device_bf16, count, stream_);
  }
  wait_stream("all_reduce", -1, count, "bf16 elements");
}

void NcclCommunicator::all_gather(Span<const float> send, Span<float> recv) {
  check_usable("all_gather");
  check_all_gather_sizes(*this, send.size(), recv.size());
  const size_t count = send.size();
  finish_call(ncclAllGather(send.data(), recv.data(), count, ncclFloat32, comm_, stream_), "all_gather", -1, count,
              "f32 elements per member");
  wait_stream("all_gather", -1, count, "f32 elements per member");
}

void NcclCommunicator::broadcast(Bytes data, int root) {
  check_usable("broadcast");
  const size_t bytes = data.size();
  TESSERA_CHECK(root >= 0 && root < size_, what("broadcast"), ": root ", root, " is outside the group of ", size_);
  finish_call(ncclBroadcast(data.data(), data.data(), bytes, ncclUint8, root, comm_, stream_), "broadcast", root, bytes,
              "bytes");
  wait_stream("broadcast", root, bytes, "bytes");
}

void NcclCommunicator::send(ConstBytes data, int peer, MessageTag tag) {
  check_usable("send");
  const size_t bytes = data.size();
  check_peer(peer, "send");
  static_cast<void>(tag);
  finish_call(ncclSend(data.data(), bytes, ncclUint8, peer, comm_, stream_), "send", peer, bytes, "bytes");
  wait_stream("send", peer, bytes, "bytes");
}

void NcclCommunicator::recv(Bytes data, int peer, MessageTag tag) {
  check_usable("recv");
  const size_t bytes = data.size();
  check_peer(peer, "recv");
  static_cast<void>(tag);
  finish_call(ncclRecv(data.data(), bytes, ncclUint8, peer, comm_, stream_), "recv", peer, bytes, "bytes");
  wait_stream("recv", peer, bytes, "bytes");
}

void NcclCommunicator::barrier() {
  // A one-element all-reduce: returns on a member only once every member has reached it.
  check_usable("barrier");
  finish_call(ncclAllReduce(barrier_word_, barrier_word_, 1, ncclFloat32, ncclSum, comm_, stream_), "barrier", -1, 0,
              nullptr);
  wait_stream("barrier", -1, 0, nullptr);
}

int64_t NcclCommunicator::all_reduce_min(int64_t value) {
  check_usable("all_reduce_min");
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(min_word_, &value, sizeof(value), cudaMemcpyHostToDevice, stream_));
  finish_call(ncclAllReduce(min_word_, min_word_, 1, ncclInt64, ncclMin, comm_, stream_), "all_reduce_min", -1, 1,
              "value");
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(&value, min_word_, sizeof(value), cudaMemcpyDeviceToHost, stream_));
  wait_stream("all_reduce_min", -1, 1, "value");
  return value;
}

}  // namespace tessera::parallel
