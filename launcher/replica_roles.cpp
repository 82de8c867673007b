#include "launcher/replica_roles.h"

#include <unistd.h>

#include <exception>
#include <string>

#include "parallel/collective_failure.h"

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

parallel::RankWatchdogOptions batch_watchdog_options() {
  parallel::RankWatchdogOptions options;
  options.step_timeout = std::chrono::milliseconds(0);
  return options;
}

RankSupervision::RankSupervision(parallel::HostCommunicator& world, parallel::ParallelLayout layout,
                                 parallel::RankWatchdogOptions options, parallel::FailureHandler on_failure) {
  parallel::run_collectively(world, [&] { topology_.emplace(world.size(), world.rank(), layout); });
  watchdog_ = std::make_unique<parallel::RankWatchdog>(world, *topology_, host_name(), activity_, options,
                                                       std::move(on_failure));
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
