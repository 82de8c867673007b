// A build without CUDA: the CPU backend (built into the runtime) is the only one.
#include "kernels/base/error.h"
#include "launcher/backends/backends.h"

namespace tessera::launcher {

void register_backends() {}

double measure_device_copy_bandwidth(size_t) {
  fail("device bandwidth needs the CUDA backend, which this build does not have (configure with -DTESSERA_CUDA=ON)");
}

}  // namespace tessera::launcher
