#include "launcher/replica_roles.h"

#include <cstdio>
#include <exception>

#include "parallel/mpi/mpi_session.h"

namespace tessera::launcher {

int follow_leader(runtime::Replica& replica) {
  try {
    replica.engine().follow();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera: error on rank %d: %s\n", replica.topology().rank(), e.what());
    std::fflush(stderr);
    parallel::MpiSession::abort_world(1);
  }
  return 0;
}

int lead_replica(runtime::Replica& replica, const std::function<int()>& lead_work) {
  int code = 0;
  try {
    code = lead_work();
  } catch (...) {
    replica.engine().shutdown();
    throw;
  }
  replica.engine().shutdown();
  return code;
}

}  // namespace tessera::launcher
