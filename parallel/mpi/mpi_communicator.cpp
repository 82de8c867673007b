#include "parallel/mpi/mpi_communicator.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <limits>
#include <thread>

#include "kernels/base/error.h"

namespace tessera::parallel {
namespace {

std::string mpi_error_text(int status) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(status, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

// MPI counts are ints; large transfers go in chunks of at most this many elements.
constexpr size_t kMaxChunk = static_cast<size_t>(INT_MAX) / 2;

// One MPI request. `what` names the group, the op and the peer for errors ("recv on pipeline group of tp_rank 0
// (member 1 of 2, peer 0)"); `expected_bytes` >= 0 checks the size of a received message.
class MpiRequest final : public PendingOperation::Backend {
 public:
  MpiRequest(MPI_Request request, std::string what, long long expected_bytes, bool cancel_when_abandoned)
      : request_(request), what_(std::move(what)), expected_(expected_bytes), cancel_(cancel_when_abandoned) {}
  ~MpiRequest() override {
    if (request_ != MPI_REQUEST_NULL) abandon();
  }

  bool test() override {
    int done = 0;
    MPI_Status status;
    check(MPI_Test(&request_, &done, &status));
    if (done) check_size(status);
    return done != 0;
  }
  void wait() override {
    MPI_Status status;
    check(MPI_Wait(&request_, &status));
    check_size(status);
  }
  void abandon() noexcept override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized || request_ == MPI_REQUEST_NULL) return;
    if (cancel_) MPI_Cancel(&request_);
    MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }

 private:
  void check(int status) {
    if (status == MPI_SUCCESS) return;
    request_ = MPI_REQUEST_NULL;
    int error_class = status;
    MPI_Error_class(status, &error_class);
    if (error_class == MPI_ERR_TRUNCATE && expected_ >= 0) {
      fail(what_, ": the message is larger than the ", expected_, "-byte receive (", mpi_error_text(status), ")");
    }
    fail(what_, " failed: ", mpi_error_text(status));
  }
  void check_size(const MPI_Status& status) const {
    if (expected_ < 0) return;
    int received = 0;
    MPI_Get_count(&status, MPI_BYTE, &received);
    TESSERA_CHECK(received == expected_, what_, ": expected ", expected_, " bytes, got ", received);
  }

  MPI_Request request_;
  std::string what_;
  long long expected_;
  bool cancel_;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name) : comm_(comm), name_(std::move(name)) {
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::world() {
  MPI_Comm dup = MPI_COMM_NULL;
  TESSERA_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &dup) == MPI_SUCCESS, "MPI_Comm_dup of the world failed");
  return std::make_unique<MpiCommunicator>(dup, "world");
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::from_world_ranks(const std::vector<int>& group_ranks,
                                                                   std::string name) {
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  auto me = std::find(group_ranks.begin(), group_ranks.end(), world_rank);
  TESSERA_CHECK(me != group_ranks.end(), "world rank ", world_rank, " is not a member of ", name);
  // The lowest world rank names the group (color); the position in the list orders it (key).
  const int color = *std::min_element(group_ranks.begin(), group_ranks.end());
  const int key = static_cast<int>(me - group_ranks.begin());
  MPI_Comm split = MPI_COMM_NULL;
  const int status = MPI_Comm_split(MPI_COMM_WORLD, color, key, &split);
  TESSERA_CHECK(status == MPI_SUCCESS, "MPI_Comm_split for ", name, " failed: ", mpi_error_text(status));
  return std::make_unique<MpiCommunicator>(split, std::move(name));
}

void MpiCommunicator::check(int mpi_status, const char* op, int peer) const {
  if (mpi_status == MPI_SUCCESS) return;
  if (peer >= 0) {
    fail(op, " on ", name_, " (member ", rank_, " of ", size_, ", peer ", peer, ") failed: ", mpi_error_text(mpi_status));
  }
  fail(op, " on ", name_, " (member ", rank_, " of ", size_, ") failed: ", mpi_error_text(mpi_status));
}

void MpiCommunicator::check_peer(int peer, const char* op) const {
  TESSERA_CHECK(peer >= 0 && peer < size_, op, " on ", name_, ": peer ", peer, " is outside the group of ", size_);
  TESSERA_CHECK(peer != rank_, op, " on ", name_, ": member ", rank_, " cannot exchange with itself");
}

void MpiCommunicator::check_tag(MessageTag tag, const char* op) const {
  TESSERA_CHECK(is_known_tag(tag), op, " on ", name_, ": tag ", to_int(tag),
                " is in no range of parallel/message_tags.h");
}

void MpiCommunicator::all_reduce_sum(Span<float> data) {
  for (size_t done = 0; done < data.size();) {
    const size_t n = std::min(kMaxChunk, data.size() - done);
    check(MPI_Allreduce(MPI_IN_PLACE, data.data() + done, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_),
          "all_reduce_sum(f32)");
    done += n;
  }
}

void MpiCommunicator::all_reduce_sum(Span<bf16> data) {
  // Sum in f32 and round once: a bf16 running sum would lose precision with every member added.
  scratch_.resize(data.size());
  for (size_t i = 0; i < data.size(); ++i) scratch_[i] = bf16_to_float(data.data()[i]);
  all_reduce_sum(host_span(scratch_));
  for (size_t i = 0; i < data.size(); ++i) data.data()[i] = float_to_bf16(scratch_[i]);
}

void MpiCommunicator::all_gather(Span<const float> send, Span<float> recv) {
  check_all_gather_sizes(*this, send.size(), recv.size());
  const size_t count = send.size();
  TESSERA_CHECK(count <= kMaxChunk, "all_gather on ", name_, ": ", count, " elements per member exceeds the limit");
  check(MPI_Allgather(send.data(), static_cast<int>(count), MPI_FLOAT, recv.data(), static_cast<int>(count),
                      MPI_FLOAT, comm_),
        "all_gather");
}

void MpiCommunicator::broadcast(Bytes data, int root) {
  TESSERA_CHECK(root >= 0 && root < size_, "broadcast on ", name_, ": root ", root, " is outside the group of ", size_);
  for (size_t done = 0; done < data.size();) {
    const size_t n = std::min(kMaxChunk, data.size() - done);
    check(MPI_Bcast(data.data() + done, static_cast<int>(n), MPI_BYTE, root, comm_), "broadcast", root);
    done += n;
  }
}

void MpiCommunicator::send(ConstBytes data, int peer, MessageTag tag) {
  check_peer(peer, "send");
  check_tag(tag, "send");
  size_t done = 0;
  do {  // once even for zero bytes: the receiver expects a message
    const size_t n = std::min(kMaxChunk, data.size() - done);
    check(MPI_Send(data.data() + done, static_cast<int>(n), MPI_BYTE, peer, to_int(tag), comm_), "send", peer);
    done += n;
  } while (done < data.size());
}

void MpiCommunicator::recv(Bytes data, int peer, MessageTag tag) {
  check_peer(peer, "recv");
  check_tag(tag, "recv");
  size_t done = 0;
  do {
    const size_t n = std::min(kMaxChunk, data.size() - done);
    MPI_Status status;
    check(MPI_Recv(data.data() + done, static_cast<int>(n), MPI_BYTE, peer, to_int(tag), comm_, &status), "recv",
          peer);
    int received = 0;
    MPI_Get_count(&status, MPI_BYTE, &received);
    TESSERA_CHECK(static_cast<size_t>(received) == n, "recv on ", name_, " from peer ", peer, ": expected ", n,
                  " bytes, got ", received);
    done += n;
  } while (done < data.size());
}

void MpiCommunicator::barrier() { check(MPI_Barrier(comm_), "barrier"); }

int64_t MpiCommunicator::all_reduce_min(int64_t value) {
  int64_t out = value;
  check(MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_MIN, comm_), "all_reduce_min");
  return out;
}

namespace {

int message_size(size_t bytes, const std::string& name, const char* op) {
  TESSERA_CHECK(bytes <= static_cast<size_t>(INT_MAX), op, " on ", name, ": ", bytes,
                " bytes exceed one non-blocking message (", INT_MAX, ")");
  return static_cast<int>(bytes);
}

}  // namespace

PendingOperation MpiCommunicator::start_send(ConstBytes data, int peer, MessageTag tag) {
  check_peer(peer, "start_send");
  check_tag(tag, "start_send");
  const int n = message_size(data.size(), name_, "start_send");
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Isend(data.data(), n, MPI_BYTE, peer, to_int(tag), comm_, &request), "start_send", peer);
  return PendingOperation(std::make_unique<MpiRequest>(
      request, concat("send on ", name_, " (member ", rank_, " of ", size_, ", peer ", peer, ", tag ", to_int(tag), ")"),
      -1, false));
}

PendingOperation MpiCommunicator::start_recv(Bytes data, int peer, MessageTag tag) {
  check_peer(peer, "start_recv");
  check_tag(tag, "start_recv");
  const int n = message_size(data.size(), name_, "start_recv");
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Irecv(data.data(), n, MPI_BYTE, peer, to_int(tag), comm_, &request), "start_recv", peer);
  return PendingOperation(std::make_unique<MpiRequest>(
      request, concat("recv on ", name_, " (member ", rank_, " of ", size_, ", peer ", peer, ", tag ", to_int(tag), ")"),
      n, true));
}

PendingOperation MpiCommunicator::start_broadcast(Bytes data, int root) {
  TESSERA_CHECK(root >= 0 && root < size_, "start_broadcast on ", name_, ": root ", root, " is outside the group of ",
                size_);
  const int n = message_size(data.size(), name_, "start_broadcast");
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibcast(data.data(), n, MPI_BYTE, root, comm_, &request), "start_broadcast", root);
  // A collective cannot be cancelled: abandoning one waits for it.
  return PendingOperation(std::make_unique<MpiRequest>(
      request, concat("broadcast on ", name_, " (member ", rank_, " of ", size_, ", root ", root, ")"), -1, false));
}

}  // namespace tessera::parallel
