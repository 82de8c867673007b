#include "kernels/base/error.h"
#include "parallel/mpi/mpi_communicator.h"
#include "parallel/process_groups.h"

namespace tessera::parallel {

ProcessGroups make_mpi_process_groups(const Topology& topology) {
  ProcessGroups groups;
  groups.world = MpiCommunicator::world();
  groups.tp = MpiCommunicator::from_world_ranks(topology.tp_group(topology.stage()),
                                                concat("tp group of stage ", topology.stage()));
  groups.pipeline = MpiCommunicator::from_world_ranks(topology.pipeline_group(topology.tp_rank()),
                                                      concat("pipeline group of tp_rank ", topology.tp_rank()));
  return groups;
}

std::unique_ptr<HostCommunicator> make_mpi_world() { return MpiCommunicator::world(); }

std::unique_ptr<HostCommunicator> make_mpi_group(const std::vector<int>& world_ranks, std::string name) {
  return MpiCommunicator::from_world_ranks(world_ranks, std::move(name));
}

}  // namespace tessera::parallel
