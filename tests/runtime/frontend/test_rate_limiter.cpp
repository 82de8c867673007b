// The per-key token buckets, on a clock the test moves by hand (no sleeps): bursts up to a minute's allowance,
// continuous refill, Retry-After as the wait rounded up, both limits together, separate keys, refunds.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "runtime/frontend/rate_limiter.h"

namespace tessera::frontend {
namespace {

using Clock = RateLimiter::Clock;
using Outcome = RateDecision::Outcome;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct FakeClock {
  Clock::time_point now{seconds(1000)};
  RateLimiter::Now function() {
    return [this] { return now; };
  }
};

TEST(RateLimiter, RequestsBurstToTheLimitThenWaitForRefill) {
  FakeClock clock;
  RateLimiter limiter(clock.function());
  const RateLimit limit{/*rpm=*/3, /*tpm=*/0};
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.admit("alice", limit, 100).admitted()) << i;
  RateDecision d = limiter.admit("alice", limit, 100);
  EXPECT_EQ(d.outcome, Outcome::kTooManyRequests);
  EXPECT_DOUBLE_EQ(d.wait.count(), 20.0);  // 3 per minute: one every 20 s
  EXPECT_EQ(d.retry_after_seconds(), 20);
  clock.now += seconds(5);
  d = limiter.admit("alice", limit, 100);
  EXPECT_FALSE(d.admitted());
  EXPECT_DOUBLE_EQ(d.wait.count(), 15.0);
  clock.now += milliseconds(14500);
  d = limiter.admit("alice", limit, 100);
  EXPECT_NEAR(d.wait.count(), 0.5, 1e-9);
  EXPECT_EQ(d.retry_after_seconds(), 1);  // rounded up, never 0
  clock.now += milliseconds(500);
  EXPECT_TRUE(limiter.admit("alice", limit, 100).admitted());  // exactly when Retry-After said
  EXPECT_FALSE(limiter.admit("alice", limit, 100).admitted());
}

TEST(RateLimiter, RefillNeverExceedsOneMinutesAllowance) {
  FakeClock clock;
  RateLimiter limiter(clock.function());
  const RateLimit limit{2, 0};
  EXPECT_TRUE(limiter.admit("k", limit, 0).admitted());
  clock.now += std::chrono::hours(5);
  EXPECT_TRUE(limiter.admit("k", limit, 0).admitted());
  EXPECT_TRUE(limiter.admit("k", limit, 0).admitted());
  EXPECT_FALSE(limiter.admit("k", limit, 0).admitted());
}

TEST(RateLimiter, TokensPerMinute) {
  FakeClock clock;
  RateLimiter limiter(clock.function());
  const RateLimit limit{0, /*tpm=*/600};  // 10 tokens a second
  EXPECT_TRUE(limiter.admit("k", limit, 400).admitted());
  RateDecision d = limiter.admit("k", limit, 300);  // 200 left, 100 short: 10 s
  EXPECT_EQ(d.outcome, Outcome::kTooManyTokens);
  EXPECT_DOUBLE_EQ(d.wait.count(), 10.0);
  EXPECT_EQ(d.retry_after_seconds(), 10);
  EXPECT_TRUE(limiter.admit("k", limit, 200).admitted());  // a smaller request fits now (not charged above)
  clock.now += seconds(30);
  EXPECT_TRUE(limiter.admit("k", limit, 300).admitted());
  EXPECT_FALSE(limiter.admit("k", limit, 1).admitted());
}

TEST(RateLimiter, ARequestLargerThanTheLimitNeverFits) {
  FakeClock clock;
  RateLimiter limiter(clock.function());
  const RateLimit limit{10, 500};
  EXPECT_EQ(limiter.admit("k", limit, 501).outcome, Outcome::kNeverFits);
  EXPECT_TRUE(limiter.admit("k", limit, 500).admitted());  // and it charged nothing
}

TEST(RateLimiter, BothLimitsMustHoldAndNeitherIsChargedOnRefusal) {
  FakeClock clock;
  RateLimiter limiter(clock.function());
  const RateLimit limit{/*rpm=*/6, /*tpm=*/600};
  EXPECT_TRUE(limiter.admit("k", limit, 600).admitted());
  RateDecision d = limiter.admit("k", limit, 60);  // requests fine (5 left), tokens empty: 6 s
  EXPECT_EQ(d.outcome, Outcome::kTooManyTokens);
  EXPECT_DOUBLE_EQ(d.wait.count(), 6.0);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.admit("k", limit, 0).admitted()) << i;  // refusals cost nothing
  clock.now += seconds(6);  // +0.6 request, +60 tokens
  d = limiter.admit("k", limit, 60);
  EXPECT_EQ(d.outcome, Outcome::kTooManyRequests);
  EXPECT_NEAR(d.wait.count(), 4.0, 1e-9);  // the longer of the two waits: the request bucket needs 0.4 more
  clock.now += seconds(4);
  EXPECT_TRUE(limiter.admit("k", limit, 60).admitted());
}

TEST(RateLimiter, KeysHaveTheirOwnBuckets) {
  FakeClock clock;
  RateLimiter limiter(clock.function());
  EXPECT_TRUE(limiter.admit("alice", {1, 0}, 0).admitted());
  EXPECT_FALSE(limiter.admit("alice", {1, 0}, 0).admitted());
  EXPECT_TRUE(limiter.admit("bob", {1, 0}, 0).admitted());
  EXPECT_TRUE(limiter.admit("", {1, 0}, 0).admitted());  // the anonymous bucket is one more
}

TEST(RateLimiter, UnlimitedIsAlwaysAdmitted) {
  FakeClock clock;
  RateLimiter limiter(clock.function());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.admit("k", {0, 0}, 1 << 20).admitted());
}

TEST(RateLimiter, RefundGivesBackWhatWasCharged) {
  FakeClock clock;
  RateLimiter limiter(clock.function());
  const RateLimit limit{1, 100};
  EXPECT_TRUE(limiter.admit("k", limit, 80).admitted());
  EXPECT_FALSE(limiter.admit("k", limit, 80).admitted());
  limiter.refund("k", limit, 80);
  EXPECT_TRUE(limiter.admit("k", limit, 100).admitted());  // back to full, never above
  limiter.refund("k", limit, 100);
  limiter.refund("k", limit, 100);
  EXPECT_TRUE(limiter.admit("k", limit, 100).admitted());
  EXPECT_FALSE(limiter.admit("k", limit, 1).admitted());
}

TEST(RateLimiter, ConcurrentCallersAdmitExactlyTheLimit) {
  FakeClock clock;  // never moves: no refill
  RateLimiter limiter(clock.function());
  const RateLimit limit{500, 0};
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (limiter.admit("k", limit, 1).admitted()) ++admitted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 500);
}

}  // namespace
}  // namespace tessera::frontend
