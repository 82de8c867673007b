#pragma once
// The backends this build of `tessera` has. The CPU backend is part of the runtime; the CUDA one is a separate
// target linked only into CUDA builds: CMake compiles exactly one of cpu_backends.cpp / cuda_backends.cpp.
#include <cstddef>

namespace tessera::launcher {

// Registers the optional stage backends (runtime/engine/stage_backend.h) with the runtime. Called once by main().
void register_backends();

// Device-to-device copy bandwidth of this rank's GPU in GB/s ((read + write bytes) / time, best of a few copies of
// `bytes`). Throws tessera::Error in a build without CUDA.
double measure_device_copy_bandwidth(size_t bytes);

}  // namespace tessera::launcher
