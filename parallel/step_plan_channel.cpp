#include "parallel/step_plan_channel.h"

#include <cstring>

#include "kernels/base/error.h"

namespace tessera::parallel {
namespace {

constexpr size_t kLengthBytes = sizeof(uint64_t);
constexpr size_t kInlineBytes = StepPlanChannel::kFrameBytes - kLengthBytes;
// A plan is a few bytes per sequence: a length beyond this is a corrupt frame, not an allocation to make.
constexpr uint64_t kMaxPlanBytes = uint64_t{1} << 31;
// The root keeps at most this many broadcasts pending before it waits for the oldest (bounded memory when a
// follower falls far behind; in steady state a plan completes before the next few are published).
constexpr size_t kMaxInFlight = 64;

}  // namespace

StepPlanChannel::StepPlanChannel(HostCommunicator& world, int root) : world_(world), root_(root) {
  TESSERA_CHECK(root >= 0 && root < world.size(), "step plan channel on ", world.name(), ": root ", root,
                " is outside the group of ", world.size());
}

void StepPlanChannel::reap_completed() {
  while (!in_flight_.empty() && in_flight_.front().head.test() && in_flight_.front().tail.test()) {
    in_flight_.pop_front();
  }
}

void StepPlanChannel::publish(const StepPlan& plan) {
  TESSERA_CHECK(world_.rank() == root_, "only the root (member ", root_, ") publishes step plans");
  reap_completed();
  if (in_flight_.size() >= kMaxInFlight) {
    in_flight_.front().head.wait();
    in_flight_.front().tail.wait();
    in_flight_.pop_front();
  }
  const std::vector<std::byte> bytes = encoder_.encode(plan);
  last_plan_bytes_ = bytes.size();
  Broadcast& b = in_flight_.emplace_back();
  b.frame.assign(kFrameBytes, std::byte{0});
  const uint64_t length = bytes.size();
  std::memcpy(b.frame.data(), &length, kLengthBytes);
  const size_t head = std::min(bytes.size(), kInlineBytes);
  std::memcpy(b.frame.data() + kLengthBytes, bytes.data(), head);
  b.rest.assign(bytes.begin() + static_cast<std::ptrdiff_t>(head), bytes.end());
  b.head = world_.start_broadcast(host_span(b.frame), root_);
  if (!b.rest.empty()) b.tail = world_.start_broadcast(host_span(b.rest), root_);
}

StepPlan StepPlanChannel::receive() {
  TESSERA_CHECK(world_.rank() != root_, "the root (member ", root_, ") does not receive its own step plans");
  std::vector<std::byte> frame(kFrameBytes);
  world_.start_broadcast(host_span(frame), root_).wait_without_spinning();
  uint64_t length = 0;
  std::memcpy(&length, frame.data(), kLengthBytes);
  TESSERA_CHECK(length <= kMaxPlanBytes, "step plan frame on ", world_.name(), " announces ", length, " bytes");
  std::vector<std::byte> bytes(static_cast<size_t>(length));
  const size_t head = std::min(bytes.size(), kInlineBytes);
  std::memcpy(bytes.data(), frame.data() + kLengthBytes, head);
  if (bytes.size() > head) {
    world_.start_broadcast(host_span(bytes).subspan(head), root_).wait();
  }
  last_plan_bytes_ = bytes.size();
  return decoder_.decode(bytes);
}

void StepPlanChannel::flush() {
  while (!in_flight_.empty()) {
    in_flight_.front().head.wait();
    in_flight_.front().tail.wait();
    in_flight_.pop_front();
  }
}

}  // namespace tessera::parallel
