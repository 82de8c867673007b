#pragma once
// How many threads each rank's CPU kernels (OpenBLAS and the packed-weight kernels) use. Several ranks on one node
// must share its cores: by default each rank gets cores / (ranks on this node), at least one.
// TESSERA_THREADS overrides; an explicit OPENBLAS_NUM_THREADS is respected as well.
namespace tessera::launcher {

// Sets the thread count for this process and returns it.
int configure_cpu_threads();

}  // namespace tessera::launcher
