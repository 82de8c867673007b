#pragma once
// Run-time rank failure without hangs. MPI calls never time out and never tell the survivors that a peer died, so
// a rank that is killed, stopped, cut off or throws in the middle of a step leaves the others blocked forever in a
// collective. The watchdog is the deadline that MPI lacks: a thread on every rank, never blocked by the engine,
// that exchanges heartbeats (with what each engine thread is doing, parallel/rank_activity.h) with the leader over
// the control channel (parallel/control_channel.h) and ends the whole job when something goes wrong:
//
//   what happened                                  who notices                  after
//   a follower's process died (SIGKILL, crash)     the leader: its connection   at once
//   a follower stopped answering (SIGSTOP, link)   the leader: no heartbeat     peer_timeout
//   a step never ends (a deadlock, a stuck device) the leader: step deadline    step_timeout
//   a follower threw inside a step                 that follower reports it     at once
//   the leader threw inside a step                 the leader                   at once
//   the leader died or is cut off                  every follower               at once / peer_timeout
//
// The leader then prints one message naming the failed rank (its place in the layout, its host) and what it was
// doing, runs the command's failure handler (serve: /health turns 503, every in-flight request gets an error),
// tells every follower to exit, and exits with status 1, so mpirun or Slurm ends the job and an operator or the
// scheduler restarts it. No rank stays behind: a follower that loses the leader exits on its own. There is no
// in-place recovery.
//
// Threads: the constructor is collective over the world (the engine thread, once, after the replica is built);
// fail() may be called from any thread; the handler runs on the thread that noticed the failure and must return
// within a few seconds.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/control_channel.h"
#include "parallel/rank_activity.h"
#include "parallel/topology.h"

namespace tessera::parallel {

struct RankWatchdogOptions {
  std::chrono::milliseconds heartbeat_interval{1000};
  // A peer not heard from for this long is declared failed.
  std::chrono::milliseconds peer_timeout{5000};
  // The leader ends the job when one step has run this long; 0 turns the deadline off.
  std::chrono::milliseconds step_timeout{60000};
  // A follower that reported its own failure waits this long for the leader's abort before it exits anyway.
  std::chrono::milliseconds report_grace{2000};
  std::chrono::milliseconds connect_timeout{30000};
};

// The leader's last words, before the followers are told to stop and the process exits. Gets the one message.
using FailureHandler = std::function<void(const std::string& message)>;

class RankWatchdog {
 public:
  // Collective over `world` (whose ranks are the topology's). Starts the watchdog thread.
  RankWatchdog(HostCommunicator& world, const Topology& topology, const std::string& host_name,
               const RankActivity& activity, RankWatchdogOptions options, FailureHandler on_failure = {});
  // Without stop(), stops watching and closes the connections without a goodbye: a rank that leaves on its own
  // (an error path that the others did not agree on) is then seen by the others as gone, and the job ends.
  ~RankWatchdog();
  RankWatchdog(const RankWatchdog&) = delete;
  RankWatchdog& operator=(const RankWatchdog&) = delete;

  // The normal end of this rank's part: tells the peers not to count its silence as a failure, stops the thread.
  void stop();
  // This rank failed (`what` says how and where). Leader: the failure sequence above. Follower: reports to the
  // leader, which ends the job; exits by itself if the leader does not within report_grace. Never returns.
  [[noreturn]] void fail(const std::string& what);

  // "rank 4 (stage 1, tp_rank 1 of tp=3 pp=2) on host node-b"
  std::string describe_rank(int rank) const;
  // Leader, any thread: the ranks not heard from for longer than `threshold` ("rank 3 (...) on host b: 3.1 s; ..."),
  // empty when none. For the last words of a leader that is being stopped from outside (mpirun sends SIGTERM when
  // it lost a host) before its own deadline fired.
  std::string silent_peers(std::chrono::milliseconds threshold) const;
  // The job is being stopped from outside and that has been said: a failure found from now on still ends every
  // rank, without a second message.
  void already_reported() { already_reported_.store(true); }

 private:
  using Clock = std::chrono::steady_clock;
  struct PeerState {
    Clock::time_point last_heard;
    ActivitySnapshot activity;  // as last reported
    bool said_goodbye = false;
  };

  void run();
  void watch_followers(Clock::time_point now);
  void watch_leader(Clock::time_point now);
  [[noreturn]] void end_job(const std::string& message);  // leader
  [[noreturn]] void exit_follower(const std::string& message, bool print);
  bool claim_failure();  // the first caller wins; later ones wait for the exit

  const Topology& topology_;
  const RankActivity& activity_;
  RankWatchdogOptions options_;
  FailureHandler on_failure_;
  std::unique_ptr<ControlChannel> channel_;
  mutable std::mutex peers_mutex_;  // the watchdog thread writes; silent_peers reads from others
  std::vector<PeerState> peers_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> failing_{false};
  std::atomic<bool> already_reported_{false};
  std::thread thread_;
};

}  // namespace tessera::parallel
