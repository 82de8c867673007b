// A build with CUDA: the CUDA stage backend (runtime/cuda/) next to the runtime's CPU one.
#include "launcher/backends/backends.h"
#include "runtime/cuda/cuda_stage_backend.h"

namespace tessera::launcher {

void register_backends() { runtime::cuda::register_cuda_stage_backend(); }

double measure_device_copy_bandwidth(size_t bytes) { return runtime::cuda::measure_device_copy_bandwidth(bytes); }

}  // namespace tessera::launcher
