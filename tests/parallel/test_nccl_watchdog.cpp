// The watchdog's wait loop on its own: no GPU needed, the poll and abort are plain functions here, and the
// loop is the same code that guards every NCCL wait.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "kernels/base/error.h"
#include "parallel/nccl/watchdog.h"
#include "tests/support/error_text.h"

namespace tessera::parallel {
namespace {

using std::chrono::milliseconds;

WatchdogOptions quick(milliseconds timeout) {
  WatchdogOptions options;
  options.timeout = timeout;
  options.spin = std::chrono::microseconds(10);
  options.sleep = std::chrono::microseconds(100);
  return options;
}

TEST(Watchdog, FormatsDurations) {
  EXPECT_EQ(format_duration(milliseconds(30'000)), "30 s");
  EXPECT_EQ(format_duration(milliseconds(1'500)), "1.5 s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250 ms");
}

TEST(Watchdog, ReturnsWhenWorkCompletesAfterSomePolls) {
  int polls = 0;
  int aborts = 0;
  wait_with_watchdog([&] { return PollResult{++polls < 50 ? PollState::kPending : PollState::kDone, {}}; },
                     [&] { ++aborts; }, "NCCL all_reduce on world", "member 0 of 1", quick(milliseconds(5'000)));
  EXPECT_EQ(polls, 50);
  EXPECT_EQ(aborts, 0);
}

TEST(Watchdog, AbortsAndThrowsOnFailure) {
  int aborts = 0;
  const std::string message = testing::error_of([&] {
    wait_with_watchdog([] { return PollResult{PollState::kFailed, "unhandled system error (remote process exited)"}; },
                       [&] { ++aborts; }, "NCCL send on pipeline group of tp_rank 0", "member 1 of 2, peer 0",
                       quick(milliseconds(5'000)));
  });
  EXPECT_EQ(aborts, 1);
  EXPECT_EQ(message,
            "NCCL send on pipeline group of tp_rank 0 failed (member 1 of 2, peer 0): unhandled system error "
            "(remote process exited)");
}

TEST(Watchdog, AbortsAndThrowsAfterTimeoutInsteadOfHanging) {
  int aborts = 0;
  const auto start = std::chrono::steady_clock::now();
  const std::string message = testing::error_of([&] {
    wait_with_watchdog([] { return PollResult{PollState::kPending, {}}; }, [&] { ++aborts; },
                       "NCCL all_reduce on tp group of stage 0", "member 1 of 2 on device 1, 4096 f32 elements",
                       quick(milliseconds(200)));
  });
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(aborts, 1);
  EXPECT_GE(elapsed, milliseconds(200));
  EXPECT_LT(elapsed, milliseconds(5'000));
  EXPECT_EQ(message.rfind("NCCL all_reduce on tp group of stage 0 timed out after 200 ms (member 1 of 2 on device 1, "
                          "4096 f32 elements); the communicator was aborted",
                          0),
            0u)
      << message;
}

}  // namespace
}  // namespace tessera::parallel
