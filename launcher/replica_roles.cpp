#include "launcher/replica_roles.h"

#include <unistd.h>

#include <exception>
#include <string>

namespace tessera::launcher {
namespace {

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

}  // namespace

void fail_in_step(runtime::Replica& replica, parallel::RankWatchdog& watchdog, const std::exception& error) {
  watchdog.fail(replica.engine().activity().snapshot().describe() + ": " + error.what());
}

std::unique_ptr<parallel::RankWatchdog> start_watchdog(runtime::Replica& replica, parallel::RankWatchdogOptions options,
                                                       parallel::FailureHandler on_failure) {
  return std::make_unique<parallel::RankWatchdog>(replica.world(), replica.topology(), host_name(),
                                                  replica.engine().activity(), options, std::move(on_failure));
}

int follow_leader(runtime::Replica& replica, parallel::RankWatchdog& watchdog) {
  try {
    replica.engine().follow();
  } catch (const std::exception& e) {
    fail_in_step(replica, watchdog, e);
  }
  watchdog.stop();
  return 0;
}

int lead_replica(runtime::Replica& replica, parallel::RankWatchdog& watchdog, const std::function<int()>& lead_work) {
  int code = 0;
  try {
    code = lead_work();
  } catch (const std::exception& e) {
    if (replica.engine().in_step()) fail_in_step(replica, watchdog, e);
    replica.engine().shutdown();
    watchdog.stop();
    throw;
  }
  replica.engine().shutdown();
  watchdog.stop();
  return code;
}

}  // namespace tessera::launcher
