#pragma once
// RAII for the MPI library: initialises MPI (threads: funneled, because only the engine thread talks MPI;
// the HTTP threads hand work over through a queue) and finalises it. One per process, made by the launcher.
#include <string>

namespace tessera::parallel {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int world_rank() const { return rank_; }
  int world_size() const { return size_; }
  std::string processor_name() const;

  // Ends every rank of the job with `exit_code`. The last resort when ranks cannot agree to stop cleanly.
  [[noreturn]] static void abort_world(int exit_code);

 private:
  int rank_ = 0;
  int size_ = 1;
  bool finalize_ = false;
};

}  // namespace tessera::parallel
