#include "parallel/rank_watchdog.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "kernels/base/error.h"
#include "parallel/duration_text.h"

namespace tessera::parallel {
namespace {

constexpr std::chrono::milliseconds kPollInterval{100};

[[noreturn]] void wait_for_exit() {
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // another thread is ending the process
}

}  // namespace

std::string ActivitySnapshot::describe() const {
  const std::string for_how_long = " (for " + format_duration(in_it) + ")";
  switch (activity) {
    case Activity::kStarting: return "starting (building the replica, loading the model)" + for_how_long;
    case Activity::kIdle: return "idle between steps" + for_how_long;
    case Activity::kWaitingForPlan: return "waiting for the next step plan" + for_how_long;
    case Activity::kExecutingStep: return "executing step " + std::to_string(step) + for_how_long;
    case Activity::kHeartbeat: return "in the idle heartbeat of step " + std::to_string(step) + for_how_long;
    case Activity::kStopping: return "stopping" + for_how_long;
  }
  return "unknown";
}

RankWatchdog::RankWatchdog(HostCommunicator& world, const Topology& topology, const std::string& host_name,
                           const RankActivity& activity, RankWatchdogOptions options, FailureHandler on_failure)
    : topology_(topology), activity_(activity), options_(options), on_failure_(std::move(on_failure)) {
  TESSERA_CHECK(world.size() == topology.world_size() && world.rank() == topology.rank(),
                "the watchdog's communicator is not the topology's world");
  channel_ = ControlChannel::open(world, host_name, options_.connect_timeout);
  peers_.assign(static_cast<size_t>(topology.world_size()), PeerState{Clock::now(), {}, false});
  thread_ = std::thread([this] { run(); });
}

RankWatchdog::~RankWatchdog() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::string RankWatchdog::describe_rank(int rank) const {
  std::string text = Topology(topology_.world_size(), rank, {topology_.tp(), topology_.pp()}).describe();
  const std::string& host = channel_->host_of(rank);
  if (!host.empty()) text += " on host " + host;
  return text;
}

void RankWatchdog::stop() {
  if (stopping_.exchange(true)) return;
  // The thread may be ending the job right now: then the process exits under us, and nothing here matters.
  ControlMessage bye;
  bye.kind = ControlMessage::Kind::kGoodbye;
  bye.activity = activity_.snapshot();
  if (topology_.is_leader()) {
    for (int r = 1; r < topology_.world_size(); ++r) channel_->send(r, bye);
  } else {
    channel_->send(0, bye);
  }
  channel_->flush(std::chrono::milliseconds(500));
  if (thread_.joinable()) thread_.join();
}

bool RankWatchdog::claim_failure() {
  bool expected = false;
  return failing_.compare_exchange_strong(expected, true);
}

void RankWatchdog::fail(const std::string& what) {
  if (topology_.is_leader()) end_job(describe_rank(0) + " failed: " + what);
  ControlMessage report;
  report.kind = ControlMessage::Kind::kFailure;
  report.activity = activity_.snapshot();
  report.text = what;
  channel_->send(0, report);
  channel_->flush(options_.report_grace);
  // The leader answers with an abort, which the watchdog thread carries out; this is the fallback.
  std::this_thread::sleep_for(options_.report_grace);
  exit_follower(describe_rank(topology_.rank()) + " failed (the leader did not answer the report): " + what, true);
}

void RankWatchdog::end_job(const std::string& message) {
  if (!claim_failure()) wait_for_exit();
  if (!already_reported_.load()) std::fprintf(stderr, "tessera: error: %s; ending every rank\n", message.c_str());
  std::fflush(stderr);
  if (on_failure_) on_failure_(message);
  ControlMessage abort;
  abort.kind = ControlMessage::Kind::kAbort;
  abort.text = message;
  for (int r = 1; r < topology_.world_size(); ++r) channel_->send(r, abort);
  channel_->flush(std::chrono::milliseconds(1000));
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(1);
}

void RankWatchdog::exit_follower(const std::string& message, bool print) {
  if (!claim_failure()) wait_for_exit();
  if (print) {
    std::fprintf(stderr, "tessera: error on rank %d: %s; exiting\n", topology_.rank(), message.c_str());
  }
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(1);
}

void RankWatchdog::run() {
  const bool leader = topology_.is_leader();
  auto last_sent = Clock::time_point{};
  const auto on_message = [&](int peer, const ControlMessage& m) {
    PeerState& p = peers_[static_cast<size_t>(peer)];
    {
      std::lock_guard lock(peers_mutex_);
      p.last_heard = Clock::now();
      p.activity = m.activity;
    }
    switch (m.kind) {
      case ControlMessage::Kind::kHeartbeat: break;
      case ControlMessage::Kind::kGoodbye: {
        std::lock_guard lock(peers_mutex_);
        p.said_goodbye = true;
        break;
      }
      case ControlMessage::Kind::kFailure:
        if (leader) end_job(describe_rank(peer) + " failed: " + m.text);
        break;
      case ControlMessage::Kind::kAbort:
        // Only the leader prints; the others go quietly (rank 1 would repeat what the leader said).
        if (!leader) exit_follower(m.text, false);
        break;
    }
  };
  const auto on_closed = [&](int peer) {
    PeerState& p = peers_[static_cast<size_t>(peer)];
    if (p.said_goodbye || stopping_.load()) return;
    if (leader) {
      end_job(describe_rank(peer) + " went away (its control connection closed: the process ended or was killed) "
              "after its last heartbeat said: " + p.activity.describe());
    }
    // Every follower loses the leader at once; one of them says so (the leader, if it could, already did).
    exit_follower("lost the leader, " + describe_rank(0) + ": its control connection closed", topology_.rank() == 1);
  };
  while (!stopping_.load()) {
    const auto now = Clock::now();
    if (now - last_sent >= options_.heartbeat_interval) {
      ControlMessage beat;
      beat.activity = activity_.snapshot();
      if (leader) {
        for (int r = 1; r < topology_.world_size(); ++r) channel_->send(r, beat);
      } else {
        channel_->send(0, beat);
      }
      last_sent = now;
    }
    channel_->poll(kPollInterval, on_message, on_closed);
    if (stopping_.load()) break;
    if (leader) {
      watch_followers(Clock::now());
    } else {
      watch_leader(Clock::now());
    }
  }
}

std::string RankWatchdog::silent_peers(std::chrono::milliseconds threshold) const {
  const auto now = Clock::now();
  std::lock_guard lock(peers_mutex_);
  std::ostringstream out;
  for (int r = 1; r < topology_.world_size(); ++r) {
    const PeerState& p = peers_[static_cast<size_t>(r)];
    const auto quiet = std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_heard);
    if (p.said_goodbye || quiet <= threshold) continue;
    out << (out.tellp() > 0 ? "; " : "") << describe_rank(r) << ": " << format_duration(quiet);
  }
  return out.str();
}

void RankWatchdog::watch_followers(Clock::time_point now) {
  std::vector<int> silent;
  for (int r = 1; r < topology_.world_size(); ++r) {
    const PeerState& p = peers_[static_cast<size_t>(r)];
    if (!p.said_goodbye && now - p.last_heard > options_.peer_timeout) silent.push_back(r);
  }
  if (!silent.empty()) {
    std::ostringstream message;
    for (size_t i = 0; i < silent.size(); ++i) {
      const PeerState& p = peers_[static_cast<size_t>(silent[i])];
      const auto quiet = std::chrono::duration_cast<std::chrono::milliseconds>(now - p.last_heard);
      message << (i ? "; " : "") << describe_rank(silent[i]) << " stopped answering: nothing heard from it for "
              << format_duration(quiet) << " (peer timeout " << format_duration(options_.peer_timeout)
              << "; stopped, hung or cut off); its last heartbeat said: " << p.activity.describe();
    }
    end_job(message.str());
  }
  if (options_.step_timeout.count() <= 0) return;
  const ActivitySnapshot mine = activity_.snapshot();
  if (mine.activity != Activity::kExecutingStep && mine.activity != Activity::kHeartbeat) return;
  if (mine.in_it <= options_.step_timeout) return;
  std::ostringstream still;
  for (int r = 1; r < topology_.world_size(); ++r) {
    const ActivitySnapshot& a = peers_[static_cast<size_t>(r)].activity;
    if ((a.activity == Activity::kExecutingStep || a.activity == Activity::kHeartbeat) && a.step == mine.step) {
      still << (still.tellp() > 0 ? ", " : "") << "rank " << r;
    }
  }
  end_job(concat("step ", mine.step, " has not finished after ", format_duration(mine.in_it), " (step timeout ",
                 format_duration(options_.step_timeout), "); ranks still in it: ",
                 still.tellp() > 0 ? still.str() : std::string("none but the leader")));
}

void RankWatchdog::watch_leader(Clock::time_point now) {
  const PeerState& leader = peers_[0];
  if (leader.said_goodbye || now - leader.last_heard <= options_.peer_timeout) return;
  const auto quiet = std::chrono::duration_cast<std::chrono::milliseconds>(now - leader.last_heard);
  exit_follower("lost the leader, " + describe_rank(0) + ": nothing heard from it for " + format_duration(quiet),
                topology_.rank() == 1);
}

}  // namespace tessera::parallel
