#pragma once
// CUDA and cuBLASLt status checks that throw tessera::Error with the failing call spelled out.
#include <cuda_runtime.h>

#include "kernels/base/error.h"

#define TESSERA_CUDA_CHECK(call)                                                                   \
  do {                                                                                             \
    const cudaError_t tessera_cuda_status = (call);                                                \
    if (tessera_cuda_status != cudaSuccess) {                                                      \
      ::tessera::fail("CUDA call ", #call, " failed: ", cudaGetErrorString(tessera_cuda_status)); \
    }                                                                                              \
  } while (false)
