#pragma once
// RAII for the MPI library: initialises MPI (threads: funneled, because only the thread that made the session, the
// engine's, calls MPI; the CPU kernels' worker threads never do) and finalises it. One per process, made by the
// launcher. Other threads (the HTTP server's, the rank watchdog's) never call MPI: they hand work to the engine thread
// (runtime/engine/request_queue.h) or talk over their own sockets (parallel/control_channel.h).
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

 private:
  int rank_ = 0;
  int size_ = 1;
  bool finalize_ = false;
};

}  // namespace tessera::parallel
