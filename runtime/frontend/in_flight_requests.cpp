#include "runtime/frontend/in_flight_requests.h"

#include <vector>

namespace tessera::frontend {

void InFlightRequests::fail(const Entry& entry, const std::string& message) {
  const auto stream = entry.stream.lock();
  if (!stream) return;
  for (int choice = 0; choice < entry.choices; ++choice) {
    StreamEvent e;
    e.kind = StreamEvent::Kind::kFinish;
    e.choice = choice;
    e.result.finish_reason = "error";
    e.result.error = message;
    stream->push(std::move(e));
  }
}

uint64_t InFlightRequests::add(const std::shared_ptr<ResultStream>& stream, int choices) {
  Entry entry{stream, choices};
  std::optional<std::string> failure;
  uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    entries_[id] = entry;
    failure = failure_;
  }
  if (failure) fail(entry, *failure);
  return id;
}

void InFlightRequests::remove(uint64_t id) {
  std::lock_guard lock(mutex_);
  entries_.erase(id);
}

void InFlightRequests::fail_all(const std::string& message) {
  std::vector<Entry> entries;
  {
    std::lock_guard lock(mutex_);
    if (!failure_) failure_ = message;
    for (const auto& [id, entry] : entries_) entries.push_back(entry);
  }
  // Outside the lock: a push may run the stream's notifier, which posts to a connection's strand.
  for (const Entry& entry : entries) fail(entry, message);
}

size_t InFlightRequests::size() const {
  std::lock_guard lock(mutex_);
  size_t live = 0;
  for (const auto& [id, entry] : entries_) live += entry.stream.expired() ? 0 : 1;
  return live;
}

}  // namespace tessera::frontend
