#pragma once
// Where this rank sits on its node: its local rank and the number of ranks on the node, as the launcher says
// (Open MPI's OMPI_COMM_WORLD_LOCAL_RANK/_SIZE, Slurm's SLURM_LOCALID), else as MPI finds it (a shared-memory split
// of the world). The runtime uses it to choose a GPU (runtime/device/device_binding.h) without calling MPI itself.
#include <functional>
#include <optional>
#include <string>

namespace tessera::parallel {

// Reads one environment variable; tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_environment();

struct LocalRank {
  int rank = 0;
  int size = 0;        // ranks on this node; 0 when the launcher did not say
  std::string source;  // "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID" or "MPI_COMM_TYPE_SHARED"
};

// Open MPI's OMPI_COMM_WORLD_LOCAL_RANK/_SIZE, then Slurm's SLURM_LOCALID (size from SLURM_NTASKS_PER_NODE when it
// is a plain number). nullopt when neither is set; throws tessera::Error naming the variable when one is set but is
// not a non-negative integer.
std::optional<LocalRank> local_rank_from_environment(const EnvLookup& env);

// MPI's answer: this rank's place in an MPI_COMM_TYPE_SHARED split of the world (parallel/mpi/local_rank_mpi.cpp).
// Collective over the world.
LocalRank mpi_node_local_rank();

// The environment's answer, else mpi_node_local_rank(). The fallback is collective: under one launcher every rank
// takes the same path, so every rank joins it.
LocalRank detect_local_rank(const EnvLookup& env = process_environment());

}  // namespace tessera::parallel
