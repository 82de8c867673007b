#pragma once
// The generation requests of the HTTP API that have not finished, by their result streams, so that an end the
// engine thread cannot report still reaches every client as an explicit error: the rank watchdog found a dead or
// stuck rank while the engine thread is blocked in a collective with it (parallel/rank_watchdog.h), or a stop
// signal arrived. The engine finishes requests through their streams as usual; a choice that receives a second
// finish ignores it (runtime/frontend/completion_job.cpp), so failing a request that just finished is harmless.
//
// Threads: any. Registration and removal happen on the connections' strands; fail_all on whichever thread knows
// of the failure (the watchdog's, a signal handler's).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "runtime/frontend/result_stream.h"

namespace tessera::frontend {

class InFlightRequests {
 public:
  // A request whose `choices` choices report through `stream`. Returns the id for remove(). After fail_all, the
  // request is failed at once.
  uint64_t add(const std::shared_ptr<ResultStream>& stream, int choices);
  void remove(uint64_t id);
  // Every choice of every registered request (and of every one registered later) finishes with `message`.
  void fail_all(const std::string& message);
  size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<ResultStream> stream;
    int choices = 0;
  };
  static void fail(const Entry& entry, const std::string& message);

  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
  std::optional<std::string> failure_;
};

}  // namespace tessera::frontend
