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

void MpiCommunicator::all_reduce_sum(float* data, size_t count) {
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(kMaxChunk, count - done);
    check(MPI_Allreduce(MPI_IN_PLACE, data + done, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_), "all_reduce_sum(f32)");
    done += n;
  }
}

void MpiCommunicator::all_reduce_sum(bf16* data, size_t count) {
  // Sum in f32 and round once: a bf16 running sum would lose precision with every member added.
  scratch_.resize(count);
  for (size_t i = 0; i < count; ++i) scratch_[i] = bf16_to_float(data[i]);
  all_reduce_sum(scratch_.data(), count);
  for (size_t i = 0; i < count; ++i) data[i] = float_to_bf16(scratch_[i]);
}

void MpiCommunicator::all_gather(const float* send, float* recv, size_t count) {
  TESSERA_CHECK(count <= kMaxChunk, "all_gather on ", name_, ": ", count, " elements per member exceeds the limit");
  check(MPI_Allgather(send, static_cast<int>(count), MPI_FLOAT, recv, static_cast<int>(count), MPI_FLOAT, comm_),
        "all_gather");
}

void MpiCommunicator::broadcast_polling(void* data, size_t bytes, int root) {
  TESSERA_CHECK(root >= 0 && root < size_, "broadcast on ", name_, ": root ", root, " is outside the group of ", size_);
  TESSERA_CHECK(bytes <= static_cast<size_t>(std::numeric_limits<int>::max()), "broadcast_polling on ", name_, ": ",
                bytes, " bytes is too large for one message");
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_, &request), "broadcast", root);
  if (rank_ == root) {
    check(MPI_Wait(&request, MPI_STATUS_IGNORE), "broadcast", root);
    return;
  }
  // Spin briefly (a busy server's next plan is usually already on its way), then sleep with a growing interval:
  // an idle follower wakes at most every kMaxSleep to let MPI make progress.
  using Clock = std::chrono::steady_clock;
  constexpr auto kSpin = std::chrono::milliseconds(2);
  constexpr auto kMaxSleep = std::chrono::microseconds(5000);
  const auto spin_until = Clock::now() + kSpin;
  auto sleep = std::chrono::microseconds(50);
  for (;;) {
    int done = 0;
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "broadcast", root);
    if (done) return;
    if (Clock::now() < spin_until) continue;
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, kMaxSleep);
  }
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  TESSERA_CHECK(root >= 0 && root < size_, "broadcast on ", name_, ": root ", root, " is outside the group of ", size_);
  auto* bytes_ptr = static_cast<char*>(data);
  for (size_t done = 0; done < bytes;) {
    const size_t n = std::min(kMaxChunk, bytes - done);
    check(MPI_Bcast(bytes_ptr + done, static_cast<int>(n), MPI_BYTE, root, comm_), "broadcast", root);
    done += n;
  }
}

void MpiCommunicator::send(const void* data, size_t bytes, int peer, MessageTag tag) {
  check_peer(peer, "send");
  const auto* bytes_ptr = static_cast<const char*>(data);
  size_t done = 0;
  do {  // once even for zero bytes: the receiver expects a message
    const size_t n = std::min(kMaxChunk, bytes - done);
    check(MPI_Send(bytes_ptr + done, static_cast<int>(n), MPI_BYTE, peer, to_int(tag), comm_), "send", peer);
    done += n;
  } while (done < bytes);
}

void MpiCommunicator::recv(void* data, size_t bytes, int peer, MessageTag tag) {
  check_peer(peer, "recv");
  auto* bytes_ptr = static_cast<char*>(data);
  size_t done = 0;
  do {
    const size_t n = std::min(kMaxChunk, bytes - done);
    MPI_Status status;
    check(MPI_Recv(bytes_ptr + done, static_cast<int>(n), MPI_BYTE, peer, to_int(tag), comm_, &status), "recv", peer);
    int received = 0;
    MPI_Get_count(&status, MPI_BYTE, &received);
    TESSERA_CHECK(static_cast<size_t>(received) == n, "recv on ", name_, " from peer ", peer, ": expected ", n,
                  " bytes, got ", received);
    done += n;
  } while (done < bytes);
}

void MpiCommunicator::barrier() { check(MPI_Barrier(comm_), "barrier"); }

}  // namespace tessera::parallel
