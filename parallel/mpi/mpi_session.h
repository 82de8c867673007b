#pragma once
// RAII for the MPI library: initialises MPI (threads: funneled, because only the thread that made the session, the
// engine's, calls MPI; the CPU kernels' worker threads never do) and finalises it. One per process, made by the
// launcher. A thread that needs a collective (a future HTTP server: there is none yet) must hand its work to that one.
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
