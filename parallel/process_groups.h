#pragma once
// The communicators one rank needs, built from its Topology: the world (control plane), its stage's TP group
// and its pipeline group (the ranks with the same tp_rank, one per stage, ordered by stage).
#include <memory>

#include "parallel/communicator.h"
#include "parallel/topology.h"

namespace tessera::parallel {

struct ProcessGroups {
  std::unique_ptr<Communicator> world;
  std::unique_ptr<Communicator> tp;        // member index == tp_rank
  std::unique_ptr<Communicator> pipeline;  // member index == stage
  // Whether some stage sends its hidden states to a rank on another host (a network between stages).
  bool pipeline_crosses_hosts = false;
};

// Collective over MPI_COMM_WORLD.
ProcessGroups make_mpi_process_groups(const Topology& topology);

}  // namespace tessera::parallel
