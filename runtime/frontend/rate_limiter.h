#pragma once
// Per-key rate limits of the HTTP API, in requests and tokens per minute: two token buckets per key (its name, or
// "" for the anonymous bucket when the server has no keys). A bucket holds at most one minute's allowance and
// refills continuously (a limit of 60/min: one more every second), so a key may burst up to its full minute and
// then runs at its rate.
//
// What a request costs: 1 request, and its tokens charged at admission: its prompt tokens plus max_tokens for every
// choice (what it may use at most, so it is known before it runs; with no max_tokens, the context left after the
// prompt). Unused tokens are not given back. A request is admitted only when both buckets hold its cost; otherwise
// neither is charged and the answer says after how long both will.
//
// Thread-safe: the I/O threads call it concurrently (one mutex; each call is a few arithmetic operations). The
// clock is injected so that tests step it by hand.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace tessera::frontend {

struct RateLimit {
  int64_t requests_per_minute = 0;  // 0: no limit
  int64_t tokens_per_minute = 0;    // 0: no limit
  bool unlimited() const { return requests_per_minute == 0 && tokens_per_minute == 0; }
};

struct RateDecision {
  enum class Outcome {
    kAdmitted,
    kTooManyRequests,  // the requests bucket is short (maybe the tokens one too)
    kTooManyTokens,    // the tokens bucket is short
    kNeverFits,        // the cost exceeds the tokens bucket's capacity: no wait helps
  };
  Outcome outcome = Outcome::kAdmitted;
  // Not admitted: the time after which this request would be (if the key makes no other request meanwhile).
  std::chrono::duration<double> wait{0};
  bool admitted() const { return outcome == Outcome::kAdmitted; }
  // `wait` in whole seconds rounded up, at least 1: the Retry-After header.
  int64_t retry_after_seconds() const;
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  explicit RateLimiter(Now now = [] { return Clock::now(); });

  // Charges 1 request and `tokens` to `bucket` under `limit` if both fit. A bucket is made full the first time its
  // name is seen; its limit is the one given (the same for a name on every call: the key file's).
  RateDecision admit(const std::string& bucket, const RateLimit& limit, int64_t tokens);
  // Gives back what an admitted request was charged, when the server could not take it after all (its queue was
  // full, it is shutting down): the client was refused, so it should not pay.
  void refund(const std::string& bucket, const RateLimit& limit, int64_t tokens);

 private:
  struct Bucket {
    double requests = 0;
    double tokens = 0;
    Clock::time_point updated;
  };
  Bucket& refilled(const std::string& bucket, const RateLimit& limit, Clock::time_point now);

  Now now_;
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;  // one per key name (the key file bounds them)
};

}  // namespace tessera::frontend
