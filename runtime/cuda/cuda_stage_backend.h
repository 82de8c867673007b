#pragma once
// The "cuda" stage backend (runtime/engine/stage_backend.h): binds each rank to its GPU, uploads its weights in
// bf16, sizes the KV cache from ReplicaOptions::gpu (memory_fraction of the device after weights and activations,
// shared evenly by the ranks on one device), chooses the TP communicator (NCCL when every rank has its own GPU,
// staged through the host when ranks share one) and builds a CudaDecoderStage.
#include <cstddef>

namespace tessera::runtime::cuda {

// Makes ReplicaOptions::backend = "cuda" available. Idempotent.
void register_cuda_stage_backend();

// Device-to-device copy bandwidth of the current GPU in GB/s: (read + write bytes) / time of the best of five
// cudaMemcpy's of `bytes`. Throws tessera::Error (with the sizes) when the buffers do not fit.
double measure_device_copy_bandwidth(size_t bytes);

}  // namespace tessera::runtime::cuda
