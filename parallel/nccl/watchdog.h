#pragma once
// The wait loop behind every blocking NCCL call: poll until the work is done, fails, or runs past a
// deadline. A collective whose peer has died never completes; without a deadline the rank would hang
// forever inside cudaStreamSynchronize. The loop itself knows nothing of CUDA or NCCL (the poll and the
// abort are passed in), so it is tested on machines without a GPU.
#include <chrono>
#include <functional>
#include <string>

#include "parallel/duration_text.h"

namespace tessera::parallel {

enum class PollState { kDone, kPending, kFailed };

struct PollResult {
  PollState state = PollState::kPending;
  std::string error;  // why, when kFailed (e.g. NCCL's async error text)
};

struct WatchdogOptions {
  std::chrono::milliseconds timeout{30'000};
  // Spin this long before sleeping between polls: decode-step collectives finish in microseconds.
  std::chrono::microseconds spin{200};
  std::chrono::microseconds sleep{100};
};

// Polls `poll` until it reports kDone (returns), kFailed (calls `abort`, then throws tessera::Error
// "<what> failed (<context>): <error>") or the timeout passes (calls `abort`, then throws
// "<what> timed out after 30 s (<context>); ..."). `what` names the op and group ("NCCL all_reduce on
// tp group of stage 0"), `context` the member, peer and size ("member 1 of 2, 4096 elements").
void wait_with_watchdog(const std::function<PollResult()>& poll, const std::function<void()>& abort,
                        const std::string& what, const std::string& context, const WatchdogOptions& options);

}  // namespace tessera::parallel
