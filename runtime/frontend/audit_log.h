#pragma once
// The audit log of the HTTP API (--audit-log FILE, `-` for stderr): one JSON object per line for every request
// answered, whatever its status: by the API, by the HTTP layer before the API saw it (malformed HTTP, a body over
// the limit, a read timeout: the route is empty when the headers never arrived whole), or while the model loads
// (503; both written by serve's front door, launcher/commands/serve_command.cpp), e.g.
//   {"time":"2025-05-01T12:00:00.123Z","request_id":"...","key_name":"alice","client":"127.0.0.1:5123",
//    "method":"POST","route":"/v1/chat/completions","status":200,"prompt_tokens":12,"completion_tokens":8,
//    "queue_seconds":0.001,"first_token_seconds":0.05,"total_seconds":0.4,"finish_reason":"stop"}
// Keys are never written (the key's name from the key file is). Prompts and completions only with
// --audit-log-content (fields "prompts", "completions").
//
// Threads: a line is formatted on the caller's thread (an I/O thread) and written by the log's own writer thread,
// so neither the engine thread nor an I/O thread waits on the disk. Each line goes out in one write(2) of a file
// opened O_APPEND, right away (nothing is held in a user-space buffer): lines never interleave and a crash loses
// none already handed over. The file is created 0600 (it may hold prompts).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tessera::frontend {

struct AuditRecord {
  std::chrono::system_clock::time_point time;  // arrival
  std::string request_id;
  std::optional<std::string> key_name;  // none: no key needed (or none given on a public route)
  std::string client;                   // address:port
  std::string method;
  std::string route;  // the path, without the query
  int status = 0;
  std::optional<std::string> error_type;  // the error's "type" when status >= 400
  std::optional<int64_t> prompt_tokens;   // generation requests
  std::optional<int64_t> completion_tokens;
  std::optional<double> queue_seconds;        // waiting for admission by the scheduler (the longest choice)
  std::optional<double> first_token_seconds;  // arrival to the first token of any choice
  double total_seconds = 0;                   // arrival to the end of the response
  std::vector<std::string> finish_reasons;    // one per choice
  bool client_disconnected = false;           // the client left before the response ended
  std::optional<std::vector<std::string>> prompts;      // only with content logging
  std::optional<std::vector<std::string>> completions;  // only with content logging
};

// "2025-05-01T12:00:00.123Z"
std::string iso8601_utc(std::chrono::system_clock::time_point t);

class AuditLog {
 public:
  // Opens `path` for appending ("-": stderr); throws tessera::Error naming it when it cannot.
  AuditLog(const std::string& path, bool log_content);
  // Writes what is still queued, then stops the writer thread.
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Whether prompts and completions go into the log (the API fills AuditRecord::prompts/completions only then).
  bool log_content() const { return log_content_; }
  // Formats the record and queues its line. Never blocks on the disk; waits only when kMaxPending lines are
  // already queued (a disk that stalls for long slows the API rather than losing audit lines).
  void write(const AuditRecord& record);
  // One line, without its newline (finish_reason: the reasons of the choices joined by ",").
  static std::string format(const AuditRecord& record);

  static constexpr size_t kMaxPending = 10000;

 private:
  void run();

  int fd_ = -1;
  bool owns_fd_ = false;
  const bool log_content_;
  std::mutex mutex_;
  std::condition_variable wake_;   // the writer: lines queued or stopping
  std::condition_variable room_;   // writers waiting for room
  std::deque<std::string> pending_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace tessera::frontend
