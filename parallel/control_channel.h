#pragma once
// A TCP star beside MPI: one connection from every rank to the leader, used only by the rank watchdog
// (parallel/rank_watchdog.h). It exists because MPI cannot serve that purpose: its calls never time out, a dead
// peer leaves the survivors blocked inside them, and under MPI_THREAD_FUNNELED only the engine thread may call it
// at all. Here the watchdog thread of each rank talks to the leader's while the engine threads may be stuck.
//
// Set-up is collective over the world communicator (the one MPI use, on the engine thread): the leader listens on
// an ephemeral port (loopback when every rank runs on its host, else every interface), broadcasts its addresses,
// the port and a random token; each follower connects, proves the token and names itself; the leader answers.
// A connection that does not know the token is dropped. Failures fail every rank together (CollectiveFailure).
//
// After set-up: small framed messages, sent without blocking (a message that does not fit in the socket buffer
// is dropped: these are heartbeats, and the next one follows), received by poll().
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/rank_activity.h"

namespace tessera::parallel {

struct ControlMessage {
  enum class Kind : uint8_t {
    kHeartbeat = 1,  // "alive", with what the sender is doing
    kFailure = 2,    // a follower failed: text says how (the leader then ends the job)
    kAbort = 3,      // the leader ends the job: every follower exits at once
    kGoodbye = 4,    // a normal end: stop watching the sender
  };
  Kind kind = Kind::kHeartbeat;
  ActivitySnapshot activity;
  std::string text;
};

class ControlChannel {
 public:
  // Collective over `world`. `connect_timeout` bounds the whole set-up.
  static std::unique_ptr<ControlChannel> open(HostCommunicator& world, const std::string& host_name,
                                              std::chrono::milliseconds connect_timeout);
  ~ControlChannel();
  ControlChannel(const ControlChannel&) = delete;
  ControlChannel& operator=(const ControlChannel&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // The host each rank named at set-up (the leader knows all; a follower knows its own and the leader's).
  const std::string& host_of(int rank) const { return hosts_[static_cast<size_t>(rank)]; }

  // To one peer: the leader to any follower, a follower only to rank 0. Thread-safe; never blocks.
  void send(int peer, const ControlMessage& message);
  // Waits up to `timeout` until what send() accepted has left (before an exit that must not lose an abort).
  void flush(std::chrono::milliseconds timeout);
  // Waits up to `timeout` for incoming messages and hands each to on_message; a peer whose connection closed
  // (or broke the framing) is reported once to on_closed and not polled again. One thread polls.
  void poll(std::chrono::milliseconds timeout, const std::function<void(int peer, const ControlMessage&)>& on_message,
            const std::function<void(int peer)>& on_closed);

 private:
  struct Peer;
  ControlChannel(int rank, int size);
  Peer* peer(int rank);

  int rank_;
  int size_;
  std::vector<std::string> hosts_;
  std::vector<std::unique_ptr<Peer>> peers_;  // by rank; the leader has one per follower, a follower only [0]
};

}  // namespace tessera::parallel
