#pragma once
// How many threads each rank's CPU kernels (OpenBLAS and the packed-weight kernels) use. Several ranks on one node
// must share its cores: by default each rank gets cores / (ranks on this node), at least one.
// TESSERA_THREADS overrides; an explicit OPENBLAS_NUM_THREADS is respected as well.
namespace tessera::launcher {

// Sets the thread count for this process and returns it.
int configure_cpu_threads();

// Ranks of this job on this node, as the launcher (Open MPI, then Slurm) reports it; 1 when none does.
int local_ranks();

}  // namespace tessera::launcher
