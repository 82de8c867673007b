#pragma once
// The communicators one rank needs, built from its Topology: the world (control plane), its stage's TP group
// and its pipeline group (the ranks with the same tp_rank, one per stage, ordered by stage). All host (MPI)
// communicators; a device backend's TP group is built over `tp`'s members (runtime/cuda/).
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/topology.h"

namespace tessera::parallel {

struct ProcessGroups {
  std::unique_ptr<HostCommunicator> world;
  std::unique_ptr<HostCommunicator> tp;        // member index == tp_rank
  std::unique_ptr<HostCommunicator> pipeline;  // member index == stage
  // Whether some stage sends its hidden states to a rank on another host (a network between stages).
  bool pipeline_crosses_hosts = false;
};

// Collective over MPI's world.
ProcessGroups make_mpi_process_groups(const Topology& topology);

// MPI's world as a communicator of its own (a duplicate), named "world".
std::unique_ptr<HostCommunicator> make_mpi_world();
// The given world ranks, in that order. Collective over MPI's world: every rank calls it with its own group's list.
std::unique_ptr<HostCommunicator> make_mpi_group(const std::vector<int>& world_ranks, std::string name);

}  // namespace tessera::parallel
