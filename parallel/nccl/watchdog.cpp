#include "parallel/nccl/watchdog.h"

#include <thread>

#include "kernels/base/error.h"

namespace tessera::parallel {

void wait_with_watchdog(const std::function<PollResult()>& poll, const std::function<void()>& abort,
                        const std::string& what, const std::string& context, const WatchdogOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + options.timeout;
  for (;;) {
    PollResult result = poll();
    if (result.state == PollState::kDone) return;
    if (result.state == PollState::kFailed) {
      abort();
      fail(what, " failed (", context, "): ", result.error);
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      abort();
      fail(what, " timed out after ", format_duration(options.timeout), " (", context,
           "); the communicator was aborted (a peer is likely dead, stuck, or calling a different collective)");
    }
    if (now - start > options.spin) std::this_thread::sleep_for(options.sleep);
  }
}

}  // namespace tessera::parallel
