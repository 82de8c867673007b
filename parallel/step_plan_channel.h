#pragma once
// The control plane: the leader's step plans to every rank of the world, one broadcast per step.
// Plans travel in the delta encoding (parallel/step_plan_delta.h): a step's message carries what changed, so it stays
// a few bytes per sequence whatever the sequences' lengths.
//
// The leader publishes a plan and goes on at once (a non-blocking broadcast): with micro-batches in flight it
// plans and computes the next one while later stages are still busy with the last, and they pick the plan up
// when they get to it. Each plan travels in one fixed-size frame (its length, then its bytes); a plan larger
// than the frame (long prompt chunks) sends the rest in a second broadcast. Every other rank waits for the next
// frame without spinning a core (an idle follower sleeps between polls).
//
// Ownership and threads: the channel owns the bytes of every broadcast still in flight and finishes them as later
// ones start (and in its destructor). Engine thread only.
#include <array>
#include <cstddef>
#include <deque>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/pending_operation.h"
#include "parallel/step_plan.h"
#include "parallel/step_plan_delta.h"

namespace tessera::parallel {

class StepPlanChannel {
 public:
  static constexpr size_t kFrameBytes = 8192;

  // `world` must outlive the channel; every member constructs one with the same root.
  explicit StepPlanChannel(HostCommunicator& world, int root = 0);
  StepPlanChannel(const StepPlanChannel&) = delete;
  StepPlanChannel& operator=(const StepPlanChannel&) = delete;

  // Root only: starts broadcasting `plan`; returns without waiting for the other members.
  void publish(const StepPlan& plan);
  // Every member but the root: the next plan, in publish order. Throws on a malformed plan.
  StepPlan receive();
  // Root only: waits until every published plan has reached every member's buffers (no pending broadcast).
  void flush();

  size_t plans_in_flight() const { return in_flight_.size(); }
  size_t last_plan_bytes() const { return last_plan_bytes_; }  // the encoding's size, without the frame's padding

 private:
  struct Broadcast {
    std::vector<std::byte> frame;  // kFrameBytes: length, then the plan's first bytes
    std::vector<std::byte> rest;   // what did not fit
    PendingOperation head, tail;
  };
  void reap_completed();

  HostCommunicator& world_;
  int root_;
  StepPlanEncoder encoder_;  // the root's
  StepPlanDecoder decoder_;  // every other member's
  std::deque<Broadcast> in_flight_;  // root: published, not yet known to be complete
  size_t last_plan_bytes_ = 0;
};

}  // namespace tessera::parallel
