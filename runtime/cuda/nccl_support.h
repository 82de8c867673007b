#pragma once
// NCCL, where this build has it (tessera_parallel_nccl): CMake compiles nccl_available.cpp or nccl_unavailable.cpp.
#include <cuda_runtime.h>

#include <memory>

#include "parallel/communicator.h"

namespace tessera::runtime::cuda {

bool nccl_available();
// An NCCL communicator with bootstrap's members (collective over bootstrap); throws when NCCL is unavailable.
std::unique_ptr<parallel::DeviceCommunicator> make_nccl_communicator(parallel::HostCommunicator& bootstrap,
                                                                   cudaStream_t stream);

}  // namespace tessera::runtime::cuda
