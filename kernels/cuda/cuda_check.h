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

// For cublasStatus_t calls of cuBLASLt; include <cublasLt.h> before using it.
#define TESSERA_CUBLAS_CHECK(call)                                                                            \
  do {                                                                                                        \
    const cublasStatus_t tessera_cublas_status = (call);                                                      \
    if (tessera_cublas_status != CUBLAS_STATUS_SUCCESS) {                                                     \
      ::tessera::fail("cuBLAS call ", #call, " failed: ", cublasLtGetStatusString(tessera_cublas_status), " (", \
                      static_cast<int>(tessera_cublas_status), ")");                                          \
    }                                                                                                         \
  } while (false)
