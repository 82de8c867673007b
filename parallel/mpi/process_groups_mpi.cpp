#include <mpi.h>

#include <cstring>
#include <vector>

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
  // Every rank's host name, to know whether the hidden states cross a network between two stages.
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  std::vector<char> names(static_cast<size_t>(topology.world_size()) * MPI_MAX_PROCESSOR_NAME);
  TESSERA_CHECK(MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                              MPI_COMM_WORLD) == MPI_SUCCESS,
                "exchanging host names over the world failed");
  const auto host = [&](int rank) { return std::string(&names[static_cast<size_t>(rank) * MPI_MAX_PROCESSOR_NAME]); };
  for (int stage = 0; stage + 1 < topology.pp(); ++stage) {
    for (int t = 0; t < topology.tp(); ++t) {
      if (host(topology.rank_of(stage, t)) != host(topology.rank_of(stage + 1, t))) groups.pipeline_crosses_hosts = true;
    }
  }
  return groups;
}

std::unique_ptr<HostCommunicator> make_mpi_world() { return MpiCommunicator::world(); }

std::unique_ptr<HostCommunicator> make_mpi_group(const std::vector<int>& world_ranks, std::string name) {
  return MpiCommunicator::from_world_ranks(world_ranks, std::move(name));
}

}  // namespace tessera::parallel
