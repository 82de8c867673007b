#pragma once
// A non-blocking communicator operation in progress (BasicCommunicator::start_send, start_recv, start_broadcast,
// parallel/communicator.h), whatever the backend and the memory space.
//
// Ownership: the caller keeps the operation's buffer alive and untouched until the operation is done; the handle
// says when. RAII: a handle never leaks a pending operation. Its destructor (and a move-assignment over it)
// finishes what is left: a send or a broadcast is waited for (its peers may still need the bytes), a receive that
// has not completed is cancelled where the backend can cancel (MPI, staged: nobody will read its buffer); NCCL
// cannot, and waits at most its watchdog's timeout before aborting its communicator. Errors surface from test()
// and wait() as tessera::Error naming the group, the op and the peer; a destructor that meets one swallows it (the
// engine is already failing, and the rank watchdog ends a rank whose peer never answers).
// Lifetimes: the communicator that returned a handle outlives it.
// Threads: one handle is used by one thread, the thread that owns its communicator (the engine thread).
#include <chrono>
#include <memory>
#include <utility>

namespace tessera::parallel {

class PendingOperation {
 public:
  // What a backend implements: one operation's completion.
  class Backend {
   public:
    virtual ~Backend() = default;
    // Non-blocking: true once the operation has completed (and its buffer may be reused). Throws on failure.
    virtual bool test() = 0;
    // Blocks until completion. May spin (the backend's own wait): for waits that are short by construction.
    virtual void wait() = 0;
    // Called by the handle's destructor when the operation has not completed: wait, or cancel where nothing
    // depends on the operation any more (an unmatched receive). Must not throw.
    virtual void abandon() noexcept = 0;
  };

  PendingOperation() = default;  // an operation that has already completed
  explicit PendingOperation(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {}
  PendingOperation(PendingOperation&& other) noexcept = default;
  PendingOperation& operator=(PendingOperation&& other) noexcept {
    if (this != &other) {
      finish_quietly();
      backend_ = std::move(other.backend_);
    }
    return *this;
  }
  PendingOperation(const PendingOperation&) = delete;
  PendingOperation& operator=(const PendingOperation&) = delete;
  ~PendingOperation() { finish_quietly(); }

  bool done() const { return !backend_; }
  // Non-blocking completion check; true once done. Throws the backend's error (the handle is then done).
  bool test();
  // Blocks until done; throws the backend's error.
  void wait();
  // Blocks until done without spinning a core: polls test(), spinning for `spin` first (a message that is on its
  // way), then sleeping with a growing interval of at most `max_sleep`. For waits that may last (an idle follower
  // waiting for the next step plan).
  void wait_without_spinning(std::chrono::microseconds spin = std::chrono::microseconds(2000),
                             std::chrono::microseconds max_sleep = std::chrono::microseconds(5000));

 private:
  void finish_quietly() noexcept;

  std::unique_ptr<Backend> backend_;  // null once completed
};

}  // namespace tessera::parallel
