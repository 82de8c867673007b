#include "parallel/collective_failure.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace tessera::parallel {

void agree_on_failure(HostCommunicator& world, const std::optional<std::string>& local_error) {
  // Every rank all-gathers a flag (1 if it failed, else 0); the lowest rank whose flag is set is the reporter, which
  // then broadcasts its message's length and text to all.
  const int n = world.size();
  std::vector<float> failed(static_cast<size_t>(n), 0.0f);
  const float mine = local_error ? 1.0f : 0.0f;
  world.all_gather(host_span(&mine, 1), host_span(failed));
  int reporter = -1;
  for (int r = 0; r < n; ++r) {
    if (failed[static_cast<size_t>(r)] != 0.0f) {
      reporter = r;
      break;
    }
  }
  if (reporter < 0) return;
  uint64_t length = (world.rank() == reporter) ? local_error->size() : 0;
  world.broadcast(host_span(&length, 1), reporter);
  std::string message(length, '\0');
  if (world.rank() == reporter) message = *local_error;
  world.broadcast(host_span(message), reporter);
  if (reporter != 0) message = concat("rank ", reporter, ": ", message);
  throw CollectiveFailure(message, reporter);
}

void run_collectively(HostCommunicator& world, const std::function<void()>& phase) {
  std::optional<std::string> error;
  try {
    phase();
  } catch (const std::exception& e) {
    error = e.what();
  }
  agree_on_failure(world, error);
}

}  // namespace tessera::parallel
