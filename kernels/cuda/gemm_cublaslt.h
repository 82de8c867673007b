#pragma once
// Dense matrix products on the GPU through cuBLASLt, with the CPU twin's layout (kernels/cpu/gemm.h):
// weights in PyTorch's nn.Linear layout [out, in], so a linear layer is y[m, n] = x[m, k] · w[n, k]ᵀ.
// Inputs bf16 (or f32), accumulation in f32, output bf16 or f32.
//
// The algorithm for each shape is chosen once by cuBLASLt's heuristic and cached with its descriptors, keyed by
// (m, n, k, types, accumulate, pointer alignment): decode runs the same few shapes thousands of times. One object per stream and
// thread (the cache and the workspace are not shared).
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

namespace tessera::kernels::cuda {

enum class GemmType : uint8_t { kF32, kBF16, kFP8E4M3 };

class CublasLtGemm {
 public:
  // `workspace_bytes` of device memory for cuBLASLt's split-K and friends (32 MiB covers Hopper's needs).
  explicit CublasLtGemm(size_t workspace_bytes = size_t{32} << 20);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // y[m, n] = x[m, k] · w[n, k]ᵀ, or y += x · wᵀ with `accumulate`. Row-major, contiguous; device pointers.
  // x and w share `in_type`. m, n or k may be 0. Throws tessera::Error on negative sizes, sizes beyond
  // int32, or when cuBLASLt finds no algorithm (naming the shape).
  void matmul_transposed(const void* x, const void* w, void* y, int64_t m, int64_t n, int64_t k, GemmType in_type,
                         GemmType out_type, cudaStream_t stream, bool accumulate = false);

  // FP8 path (compute capability 8.9+): y[m, n] = (x_scale · x[m, k]) · (w_scale · w[n, k])ᵀ with e4m3 operands
  // and per-tensor f32 scales (device pointers, kernels/cuda/fp8.h makes them), f32 accumulation, bf16 or f32
  // output. cuBLASLt needs k a multiple of 16 and 16-byte aligned operands here. Throws tessera::Error on an
  // older device or unsupported sizes.
  void matmul_transposed_fp8(const __nv_fp8_e4m3* x, const float* x_scale, const __nv_fp8_e4m3* w,
                             const float* w_scale, void* y, int64_t m, int64_t n, int64_t k, GemmType out_type,
                             cudaStream_t stream);

  // Typed conveniences.
  void matmul_transposed(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int64_t m, int64_t n,
                         int64_t k, cudaStream_t stream) {
    matmul_transposed(x, w, y, m, n, k, GemmType::kBF16, GemmType::kBF16, stream);
  }
  void matmul_transposed(const __nv_bfloat16* x, const __nv_bfloat16* w, float* y, int64_t m, int64_t n, int64_t k,
                         cudaStream_t stream) {
    matmul_transposed(x, w, y, m, n, k, GemmType::kBF16, GemmType::kF32, stream);
  }
  void matmul_transposed(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
                         cudaStream_t stream) {
    matmul_transposed(x, w, y, m, n, k, GemmType::kF32, GemmType::kF32, stream);
  }

  size_t cached_plans() const { return plans_.size(); }

 private:
  struct Plan;
  // (m, n, k, in type, out type, accumulate, alignment of the pointers): cuBLASLt's fastest kernels need
  // 16-byte (or more) aligned operands, so the alignment is part of what the algorithm was chosen for.
  using Key = std::tuple<int64_t, int64_t, int64_t, GemmType, GemmType, bool, uint32_t>;
  Plan& plan_for(const Key& key);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace tessera::kernels::cuda
