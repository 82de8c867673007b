#include "runtime/frontend/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "kernels/base/error.h"

namespace tessera::frontend {

std::string iso8601_utc(std::chrono::system_clock::time_point t) {
  const auto since_epoch = t.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  const std::time_t whole = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  gmtime_r(&whole, &utc);
  char text[96];  // room for any int the format could see (the compiler checks), 24 used
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(millis));
  return text;
}

AuditLog::AuditLog(const std::string& path, bool log_content) : log_content_(log_content) {
  if (path == "-") {
    fd_ = STDERR_FILENO;
  } else {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    TESSERA_CHECK(fd_ >= 0, "audit log ", path, ": cannot be opened for appending: ", std::strerror(errno));
    owns_fd_ = true;
  }
  writer_ = std::thread([this] { run(); });
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
  if (owns_fd_) ::close(fd_);
}

std::string AuditLog::format(const AuditRecord& r) {
  using nlohmann::json;
  json j = json::object();
  j["time"] = iso8601_utc(r.time);
  j["request_id"] = r.request_id;
  j["key_name"] = r.key_name ? json(*r.key_name) : json(nullptr);
  j["client"] = r.client;
  j["method"] = r.method;
  j["route"] = r.route;
  j["status"] = r.status;
  if (r.error_type) j["error_type"] = *r.error_type;
  j["prompt_tokens"] = r.prompt_tokens ? json(*r.prompt_tokens) : json(nullptr);
  j["completion_tokens"] = r.completion_tokens ? json(*r.completion_tokens) : json(nullptr);
  j["queue_seconds"] = r.queue_seconds ? json(*r.queue_seconds) : json(nullptr);
  j["first_token_seconds"] = r.first_token_seconds ? json(*r.first_token_seconds) : json(nullptr);
  j["total_seconds"] = r.total_seconds;
  if (r.finish_reasons.empty()) {
    j["finish_reason"] = nullptr;
  } else {
    std::string joined;
    for (const std::string& reason : r.finish_reasons) {
      if (!joined.empty()) joined += ',';
      joined += reason;
    }
    j["finish_reason"] = joined;
  }
  if (r.client_disconnected) j["client_disconnected"] = true;
  if (r.prompts) j["prompts"] = *r.prompts;
  if (r.completions) j["completions"] = *r.completions;
  // Invalid UTF-8 (a prompt cut inside a character) becomes U+FFFD rather than an exception: a line is always written.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void AuditLog::write(const AuditRecord& record) {
  std::string line = format(record);
  line += '\n';
  {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return pending_.size() < kMaxPending || stopping_; });
    pending_.push_back(std::move(line));
  }
  wake_.notify_one();
}

void AuditLog::run() {
  bool warned = false;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return !pending_.empty() || stopping_; });
    if (pending_.empty()) return;  // stopping, and everything written
    std::string line = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    room_.notify_one();
    // One write(2) per line; a short write (a full disk, a signal) continues where it stopped, a failed one drops
    // the line: the writer never stops the server, but says so once on stderr.
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (!warned) std::fprintf(stderr, "tessera: warning: the audit log cannot be written (%s): lines are lost\n",
                                  n < 0 ? std::strerror(errno) : "no progress");
        warned = true;
        break;
      }
      done += static_cast<size_t>(n);
    }
    lock.lock();
  }
}

}  // namespace tessera::frontend
