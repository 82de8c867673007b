#include "kernels/base/error.h"
#include "runtime/cuda/nccl_support.h"

namespace tessera::runtime::cuda {

bool nccl_available() { return false; }

std::unique_ptr<parallel::DeviceCommunicator> make_nccl_communicator(parallel::HostCommunicator& bootstrap, cudaStream_t) {
  fail("NCCL communicator for ", bootstrap.name(), ": this build has no NCCL (set NCCL_HOME and reconfigure)");
}

}  // namespace tessera::runtime::cuda
