#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/rope.h"

namespace tessera::kernels::cuda {
namespace {

// grid: (tokens, heads q+kv); threads over the half_dim pairs.
template <class T>
__global__ void rope_kernel(T* q, int64_t q_heads, int64_t q_stride, T* k, int64_t k_stride,
                            const int32_t* __restrict__ positions, const float* __restrict__ cos_table,
                            const float* __restrict__ sin_table, int64_t table_positions, int64_t half,
                            bool interleaved) {
  const int64_t token = blockIdx.x;
  const int64_t head = blockIdx.y;
  const int64_t position = positions[token];
  if (position < 0 || position >= table_positions) return;
  T* x = head < q_heads ? q + token * q_stride + head * 2 * half : k + token * k_stride + (head - q_heads) * 2 * half;
  const float* cos = cos_table + position * half;
  const float* sin = sin_table + position * half;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const int64_t ia = interleaved ? 2 * i : i;
    const int64_t ib = interleaved ? 2 * i + 1 : i + half;
    const float a = detail::to_f32(x[ia]);
    const float b = detail::to_f32(x[ib]);
    // Explicitly rounded products and sums: no FMA contraction, the CPU's exact f32 arithmetic.
    x[ia] = detail::from_f32<T>(__fsub_rn(__fmul_rn(a, cos[i]), __fmul_rn(b, sin[i])));
    x[ib] = detail::from_f32<T>(__fadd_rn(__fmul_rn(b, cos[i]), __fmul_rn(a, sin[i])));
  }
}

template <class T>
void launch(T* q, int64_t q_heads, int64_t q_stride, T* k, int64_t kv_heads, int64_t k_stride,
            const int32_t* positions, int64_t tokens, int64_t max_position, DeviceRopeTable& table,
            cpu::RopeLayout layout, cudaStream_t stream) {
  const int64_t head_dim = table.head_dim();
  TESSERA_CHECK(tokens >= 0 && q_heads >= 0 && kv_heads >= 0 && tokens <= INT32_MAX && q_heads + kv_heads <= 65535,
                "apply_rope (CUDA): bad sizes (tokens=", tokens, ", q_heads=", q_heads, ", kv_heads=", kv_heads, ")");
  TESSERA_CHECK(q_stride >= q_heads * head_dim, "apply_rope (CUDA): q token stride ", q_stride,
                " is smaller than q_heads * head_dim = ", q_heads * head_dim);
  TESSERA_CHECK(kv_heads == 0 || (k != nullptr && k_stride >= kv_heads * head_dim),
                "apply_rope (CUDA): k is null or its token stride ", k_stride, " is smaller than kv_heads * head_dim = ",
                kv_heads * head_dim);
  TESSERA_CHECK(max_position >= -1, "apply_rope (CUDA): negative max_position ", max_position);
  if (tokens == 0 || q_heads + kv_heads == 0) return;
  table.reserve(max_position + 1);
  const dim3 grid(static_cast<unsigned>(tokens), static_cast<unsigned>(q_heads + kv_heads));
  const int threads = table.half_dim() >= 64 ? 64 : 32;
  rope_kernel<T><<<grid, threads, 0, stream>>>(q, q_heads, q_stride, k, k_stride, positions, table.cos(), table.sin(),
                                               table.positions(), table.half_dim(),
                                               layout == cpu::RopeLayout::kInterleaved);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

DeviceRopeTable::DeviceRopeTable(const cpu::RopeConfig& config, int64_t initial_positions) : host_(config) {
  reserve(initial_positions);
}

DeviceRopeTable::~DeviceRopeTable() {
  if (cos_ != nullptr) cudaFree(cos_);
  if (sin_ != nullptr) cudaFree(sin_);
}

void DeviceRopeTable::reserve(int64_t positions) {
  if (positions <= device_positions_) return;
  host_.reserve(positions);  // grows geometrically
  const int64_t target = host_.positions();
  const size_t bytes = static_cast<size_t>(target * host_.half_dim()) * sizeof(float);
  float* new_cos = nullptr;
  float* new_sin = nullptr;
  TESSERA_CUDA_CHECK(cudaMalloc(&new_cos, bytes));
  if (const cudaError_t status = cudaMalloc(&new_sin, bytes); status != cudaSuccess) {
    cudaFree(new_cos);
    fail("cudaMalloc of the RoPE sin table (", bytes, " bytes) failed: ", cudaGetErrorString(status));
  }
  // Synchronous: growth is rare and the old table may still be in use by queued kernels until here.
  TESSERA_CUDA_CHECK(cudaDeviceSynchronize());
  TESSERA_CUDA_CHECK(cudaMemcpy(new_cos, host_.cos(0), bytes, cudaMemcpyHostToDevice));
  TESSERA_CUDA_CHECK(cudaMemcpy(new_sin, host_.sin(0), bytes, cudaMemcpyHostToDevice));
  if (cos_ != nullptr) cudaFree(cos_);
  if (sin_ != nullptr) cudaFree(sin_);
  cos_ = new_cos;
  sin_ = new_sin;
  device_positions_ = target;
}

void apply_rope(float* q, int64_t q_heads, int64_t q_token_stride, float* k, int64_t kv_heads, int64_t k_token_stride,
                const int32_t* positions, int64_t tokens, int64_t max_position, DeviceRopeTable& table,
                cpu::RopeLayout layout, cudaStream_t stream) {
  launch(q, q_heads, q_token_stride, k, kv_heads, k_token_stride, positions, tokens, max_position, table, layout,
         stream);
}
void apply_rope(__nv_bfloat16* q, int64_t q_heads, int64_t q_token_stride, __nv_bfloat16* k, int64_t kv_heads,
                int64_t k_token_stride, const int32_t* positions, int64_t tokens, int64_t max_position,
                DeviceRopeTable& table, cpu::RopeLayout layout, cudaStream_t stream) {
  launch(q, q_heads, q_token_stride, k, kv_heads, k_token_stride, positions, tokens, max_position, table, layout,
         stream);
}

}  // namespace tessera::kernels::cuda
