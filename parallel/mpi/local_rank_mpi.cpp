#include <mpi.h>

#include "kernels/base/error.h"
#include "parallel/local_rank.h"

namespace tessera::parallel {

LocalRank mpi_node_local_rank() {
  MPI_Comm node = MPI_COMM_NULL;
  TESSERA_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS,
                "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) failed while finding this rank's local rank");
  LocalRank local;
  MPI_Comm_rank(node, &local.rank);
  MPI_Comm_size(node, &local.size);
  MPI_Comm_free(&node);
  local.source = "MPI_COMM_TYPE_SHARED";
  return local;
}

}  // namespace tessera::parallel
