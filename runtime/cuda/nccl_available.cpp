#include "parallel/nccl/nccl_communicator.h"
#include "runtime/cuda/nccl_support.h"

namespace tessera::runtime::cuda {

bool nccl_available() { return true; }

std::unique_ptr<parallel::DeviceCommunicator> make_nccl_communicator(parallel::HostCommunicator& bootstrap,
                                                                   cudaStream_t stream) {
  return std::make_unique<parallel::NcclCommunicator>(bootstrap, stream);
}

}  // namespace tessera::runtime::cuda
