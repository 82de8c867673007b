#pragma once
// Ranks fail together with one message. Every rank runs a phase (configuration, loading) and reports whether it
// failed; if any did, every rank throws the same CollectiveFailure, carrying the lowest failing rank's message, and
// only the leader shows it. Without this, a rank that fails alone leaves the others blocked in their next
// collective: a silent hang.
#include <functional>
#include <optional>
#include <string>

#include "kernels/base/error.h"
#include "parallel/communicator.h"

namespace tessera::parallel {

class CollectiveFailure : public Error {
 public:
  CollectiveFailure(const std::string& message, int failing_rank)
      : Error(message), failing_rank_(failing_rank) {}
  int failing_rank() const { return failing_rank_; }

 private:
  int failing_rank_;
};

// Collective over `world`. `local_error` is this rank's failure, if any. Throws CollectiveFailure on every rank
// when any rank failed; returns normally on every rank otherwise.
void agree_on_failure(HostCommunicator& world, const std::optional<std::string>& local_error);

// Runs `phase` on this rank, catching tessera::Error (and std::exception), then agree_on_failure.
void run_collectively(HostCommunicator& world, const std::function<void()>& phase);

}  // namespace tessera::parallel
