#pragma once
// The two roles of a rank in a multi-rank command, shared by `generate` and `bench`:
//  - followers execute the leader's step plans until it says shutdown;
//  - the leader runs the command's work and always ends with a shutdown plan, also when the work throws, so that
//    the followers leave their loop and the error is reported once, by the leader.
#include <functional>

#include "runtime/engine/replica.h"

namespace tessera::launcher {

// Followers. An error here ends the whole job with MPI_Abort (after printing the rank and the message): the leader
// is waiting on this rank, and nothing else would wake it.
int follow_leader(runtime::Replica& replica);

// The leader: returns lead_work's exit code, rethrows its error after the shutdown.
int lead_replica(runtime::Replica& replica, const std::function<int()>& lead_work);

}  // namespace tessera::launcher
