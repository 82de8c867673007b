#include "kernels/cuda/gemm_cublaslt.h"

#include <climits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fp8.h"

namespace tessera::kernels::cuda {
namespace {

cudaDataType_t cuda_type(GemmType type) {
  switch (type) {
    case GemmType::kF32: return CUDA_R_32F;
    case GemmType::kBF16: return CUDA_R_16BF;
    case GemmType::kFP8E4M3: return CUDA_R_8F_E4M3;
  }
  return CUDA_R_32F;
}
const char* type_name(GemmType type) {
  switch (type) {
    case GemmType::kF32: return "f32";
    case GemmType::kBF16: return "bf16";
    case GemmType::kFP8E4M3: return "fp8 e4m3";
  }
  return "?";
}

// The largest power of two (at most 256) that divides every address.
uint32_t common_alignment(const void* x, const void* w, const void* y) {
  const auto bits = reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w) | reinterpret_cast<uintptr_t>(y) | 256u;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

}  // namespace

// Descriptors and the chosen algorithm of one shape. cuBLAS is column-major: the row-major product
// y[m, n] = x[m, k] · w[n, k]ᵀ is computed as its transpose yᵀ[n, m] = w[n, k] · xᵀ[k, m], where the
// row-major w is the column-major [k, n] matrix taken transposed (op T, lda = k), the row-major x is
// the column-major [k, m] matrix (op N, ldb = k) and the row-major y is the column-major [n, m] (ldc = n).
// This "TN" form is the one cuBLASLt's fastest kernels are written for.
struct CublasLtGemm::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr;
  cublasLtMatrixLayout_t b = nullptr;
  cublasLtMatrixLayout_t c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (op != nullptr) cublasLtMatmulDescDestroy(op);
  }
};

CublasLtGemm::CublasLtGemm(size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
  TESSERA_CUBLAS_CHECK(cublasLtCreate(&handle_));
  if (workspace_bytes_ > 0) {
    const cudaError_t status = cudaMalloc(&workspace_, workspace_bytes_);
    if (status != cudaSuccess) {
      cublasLtDestroy(handle_);
      fail("cudaMalloc of the ", workspace_bytes_, "-byte cuBLASLt workspace failed: ", cudaGetErrorString(status));
    }
  }
}

CublasLtGemm::~CublasLtGemm() {
  plans_.clear();
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

CublasLtGemm::Plan& CublasLtGemm::plan_for(const Key& key) {
  if (auto it = plans_.find(key); it != plans_.end()) return *it->second;
  const auto [m, n, k, in_type, out_type, accumulate, alignment] = key;
  auto plan = std::make_unique<Plan>();
  TESSERA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T;
  const cublasOperation_t no_transpose = CUBLAS_OP_N;
  TESSERA_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose));
  TESSERA_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &no_transpose, sizeof no_transpose));
  TESSERA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->a, cuda_type(in_type), static_cast<uint64_t>(k),
                                                  static_cast<uint64_t>(n), k));
  TESSERA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->b, cuda_type(in_type), static_cast<uint64_t>(k),
                                                  static_cast<uint64_t>(m), k));
  TESSERA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->c, cuda_type(out_type), static_cast<uint64_t>(n),
                                                  static_cast<uint64_t>(m), n));

  cublasLtMatmulPreference_t preference = nullptr;
  TESSERA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                       sizeof workspace_bytes_);
  for (const auto attribute : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                               CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
    cublasLtMatmulPreferenceSetAttribute(preference, attribute, &alignment, sizeof alignment);
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle_, plan->op, plan->a, plan->b, plan->c, plan->c,
                                                               preference, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  TESSERA_CHECK(status == CUBLAS_STATUS_SUCCESS && found > 0, "cuBLASLt found no algorithm for y[", m, ", ", n,
                "] = x[", m, ", ", k, "] · w[", n, ", ", k, "]ᵀ with ", type_name(in_type), " inputs and ",
                type_name(out_type), " output", accumulate ? " (accumulating)" : "", ", operands aligned to ",
                alignment, " bytes: ",
                cublasLtGetStatusString(status));
  plan->algo = result.algo;
  return *plans_.emplace(key, std::move(plan)).first->second;
}

void CublasLtGemm::matmul_transposed(const void* x, const void* w, void* y, int64_t m, int64_t n, int64_t k,
                                     GemmType in_type, GemmType out_type, cudaStream_t stream, bool accumulate) {
  TESSERA_CHECK(m >= 0 && n >= 0 && k >= 0 && m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX,
                "matmul_transposed (cuBLASLt): bad sizes m=", m, " n=", n, " k=", k);
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: y = 0, or y unchanged when accumulating
    if (!accumulate) {
      const size_t bytes = static_cast<size_t>(m * n) * (out_type == GemmType::kF32 ? 4 : 2);
      TESSERA_CUDA_CHECK(cudaMemsetAsync(y, 0, bytes, stream));
    }
    return;
  }
  TESSERA_CHECK(x != nullptr && w != nullptr && y != nullptr, "matmul_transposed (cuBLASLt): null operand");
  TESSERA_CHECK(in_type != GemmType::kFP8E4M3 && out_type != GemmType::kFP8E4M3,
                "matmul_transposed (cuBLASLt): fp8 operands go through matmul_transposed_fp8 (they need scales)");
  Plan& plan = plan_for(Key{m, n, k, in_type, out_type, accumulate, common_alignment(x, w, y)});
  const float alpha = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  TESSERA_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.op, &alpha, w, plan.a, x, plan.b, &beta, y, plan.c, y, plan.c,
                                      &plan.algo, workspace_, workspace_bytes_, stream));
}

void CublasLtGemm::matmul_transposed_fp8(const __nv_fp8_e4m3* x, const float* x_scale, const __nv_fp8_e4m3* w,
                                         const float* w_scale, void* y, int64_t m, int64_t n, int64_t k,
                                         GemmType out_type, cudaStream_t stream) {
  TESSERA_CHECK(device_supports_fp8(), "FP8 GEMM needs a GPU of compute capability 8.9 or newer (Ada, Hopper)");
  TESSERA_CHECK(out_type != GemmType::kFP8E4M3, "matmul_transposed_fp8: the output is bf16 or f32");
  TESSERA_CHECK(m >= 0 && n >= 0 && k > 0 && k % 16 == 0 && m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX,
                "matmul_transposed_fp8: bad sizes m=", m, " n=", n, " k=", k, " (k a positive multiple of 16)");
  TESSERA_CHECK(x != nullptr && w != nullptr && y != nullptr && x_scale != nullptr && w_scale != nullptr,
                "matmul_transposed_fp8: null operand or scale");
  if (m == 0 || n == 0) return;
  const uint32_t alignment = common_alignment(x, w, y);
  TESSERA_CHECK(alignment >= 16, "matmul_transposed_fp8: operands must be 16-byte aligned, these are aligned to ",
                alignment, " bytes");
  Plan& plan = plan_for(Key{m, n, k, GemmType::kFP8E4M3, out_type, false, alignment});
  // Scales are device pointers read at launch, so they are set on every call (the plan is shared by shape).
  // In the column-major form A is w and B is x (see Plan).
  TESSERA_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof w_scale));
  TESSERA_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof x_scale));
  const float alpha = 1.0f;
  const float beta = 0.0f;
  TESSERA_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.op, &alpha, w, plan.a, x, plan.b, &beta, y, plan.c, y, plan.c,
                                      &plan.algo, workspace_, workspace_bytes_, stream));
}

}  // namespace tessera::kernels::cuda
