#include "runtime/frontend/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace tessera::frontend {
namespace {

// A bucket's level after `seconds` of refilling at capacity per minute, never above the capacity.
double refill(double level, int64_t per_minute, double seconds) {
  const auto capacity = static_cast<double>(per_minute);
  return std::min(capacity, level + capacity * seconds / 60.0);
}

// Rounding of the refill sums may leave a bucket a hair short at the very moment its wait ends; this much short
// counts as full, so that a client retrying exactly when told is admitted.
constexpr double kSlack = 1e-9;

// Seconds until a bucket filling at per_minute holds `need` (0 when it already does).
double seconds_until(double level, int64_t per_minute, double need) {
  return level + kSlack >= need ? 0.0 : (need - level) * 60.0 / static_cast<double>(per_minute);
}

}  // namespace

int64_t RateDecision::retry_after_seconds() const {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait.count())));
}

RateLimiter::RateLimiter(Now now) : now_(std::move(now)) {}

RateLimiter::Bucket& RateLimiter::refilled(const std::string& name, const RateLimit& limit, Clock::time_point now) {
  auto [it, fresh] = buckets_.try_emplace(name);
  Bucket& b = it->second;
  if (fresh) {
    b.requests = static_cast<double>(limit.requests_per_minute);
    b.tokens = static_cast<double>(limit.tokens_per_minute);
  } else {
    const double elapsed = std::max(0.0, std::chrono::duration<double>(now - b.updated).count());
    b.requests = refill(b.requests, limit.requests_per_minute, elapsed);
    b.tokens = refill(b.tokens, limit.tokens_per_minute, elapsed);
  }
  b.updated = now;
  return b;
}

RateDecision RateLimiter::admit(const std::string& name, const RateLimit& limit, int64_t tokens) {
  RateDecision d;
  if (limit.unlimited()) return d;
  const bool count_requests = limit.requests_per_minute > 0;
  const bool count_tokens = limit.tokens_per_minute > 0;
  if (count_tokens && tokens > limit.tokens_per_minute) {
    d.outcome = RateDecision::Outcome::kNeverFits;
    return d;
  }
  const Clock::time_point now = now_();
  std::lock_guard lock(mutex_);
  Bucket& b = refilled(name, limit, now);
  const double request_wait = count_requests ? seconds_until(b.requests, limit.requests_per_minute, 1.0) : 0.0;
  const double token_wait =
      count_tokens ? seconds_until(b.tokens, limit.tokens_per_minute, static_cast<double>(tokens)) : 0.0;
  if (request_wait > 0 || token_wait > 0) {
    d.outcome = request_wait > 0 ? RateDecision::Outcome::kTooManyRequests : RateDecision::Outcome::kTooManyTokens;
    d.wait = std::chrono::duration<double>(std::max(request_wait, token_wait));
    return d;
  }
  if (count_requests) b.requests = std::max(0.0, b.requests - 1.0);
  if (count_tokens) b.tokens = std::max(0.0, b.tokens - static_cast<double>(tokens));
  return d;
}

void RateLimiter::refund(const std::string& name, const RateLimit& limit, int64_t tokens) {
  if (limit.unlimited()) return;
  const Clock::time_point now = now_();
  std::lock_guard lock(mutex_);
  Bucket& b = refilled(name, limit, now);
  if (limit.requests_per_minute > 0) b.requests = std::min(b.requests + 1.0, static_cast<double>(limit.requests_per_minute));
  if (limit.tokens_per_minute > 0) {
    b.tokens = std::min(b.tokens + static_cast<double>(tokens), static_cast<double>(limit.tokens_per_minute));
  }
}

}  // namespace tessera::frontend
