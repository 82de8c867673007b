#pragma once
// The MPI backend of HostCommunicator: host memory, any MPI transport (shared memory, TCP, UCX/InfiniBand).
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace tessera::parallel {

class MpiCommunicator final : public HostCommunicator {
 public:
  // Takes ownership of `comm` (freed in the destructor unless it is MPI_COMM_WORLD).
  MpiCommunicator(MPI_Comm comm, std::string name);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  // A communicator over the given world ranks, in that order. Collective over MPI_COMM_WORLD: every world
  // rank calls it with its own group's list (ranks outside every list are not allowed).
  static std::unique_ptr<MpiCommunicator> from_world_ranks(const std::vector<int>& group_ranks, std::string name);
  static std::unique_ptr<MpiCommunicator> world();

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }

  void all_reduce_sum(Span<float> data) override;
  void all_reduce_sum(Span<bf16> data) override;
  void all_gather(Span<const float> send, Span<float> recv) override;
  void broadcast(Bytes data, int root) override;
  void send(ConstBytes data, int peer, MessageTag tag) override;
  void recv(Bytes data, int peer, MessageTag tag) override;
  void barrier() override;
  int64_t all_reduce_min(int64_t value) override;

  // One MPI request each (a message of up to INT_MAX bytes). A handle dropped before completion waits for a send
  // or a broadcast and cancels a receive (MPI_Cancel), which then matches nothing.
  [[nodiscard]] PendingOperation start_send(ConstBytes data, int peer, MessageTag tag) override;
  [[nodiscard]] PendingOperation start_recv(Bytes data, int peer, MessageTag tag) override;
  [[nodiscard]] PendingOperation start_broadcast(Bytes data, int root) override;

  MPI_Comm handle() const { return comm_; }

 private:
  void check(int mpi_status, const char* op, int peer = -1) const;
  void check_peer(int peer, const char* op) const;
  void check_tag(MessageTag tag, const char* op) const;

  MPI_Comm comm_;
  std::string name_;
  int rank_ = 0;
  int size_ = 1;
  std::vector<float> scratch_;  // f32 staging for bf16 reductions
};

}  // namespace tessera::parallel
