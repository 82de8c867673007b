// Paged-attention decode with split-K over the keys (flash-decoding). One thread block per
// (sequence, KV head, partition of 256 keys): it loads the group's query heads, scores every key of its
// partition against all of them (each K row read once per group), takes a softmax within the partition
// and multiplies by V. With more than one partition, a second kernel merges the partial results with
// their maxima and sums (the log-sum-exp rescaling of flash attention).
#include <math_constants.h>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"

namespace tessera::kernels::cuda {
namespace {

constexpr int kPartition = 256;
constexpr int kThreads = 128;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxGroup = 16;
constexpr int kMaxPerLane = kMaxHeadDim / 32;

template <class T>
__global__ void decode_partition_kernel(DeviceKvCache<T> cache, const int32_t* __restrict__ block_tables,
                                        int64_t max_blocks, const int32_t* __restrict__ context_lens,
                                        const T* __restrict__ q, int64_t q_stride, int group, float scale,
                                        T* __restrict__ out, int64_t out_stride, float* __restrict__ partial_out,
                                        float* __restrict__ partial_max, float* __restrict__ partial_sum,
                                        int num_partitions) {
  extern __shared__ float smem[];
  __shared__ int64_t key_base[kPartition];
  __shared__ float row_max[kMaxGroup];
  __shared__ float row_sum[kMaxGroup];
  const int head_dim = static_cast<int>(cache.head_dim);
  float* q_s = smem;                          // [group][head_dim]
  float* scores = smem + group * head_dim;    // [group][kPartition]
  const int64_t seq = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int part = blockIdx.z;
  const int heads = group * static_cast<int>(cache.kv_heads);
  const int context = context_lens[seq];
  const int begin = part * kPartition;
  const int count = min(context, begin + kPartition) - begin;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int warps = blockDim.x / 32;

  if (count <= 0) {  // a partition beyond this sequence's context: contributes nothing to the merge
    if (threadIdx.x < group) {
      const int64_t slot = (seq * heads + kv_head * group + threadIdx.x) * num_partitions + part;
      partial_max[slot] = -CUDART_INF_F;
      partial_sum[slot] = 0.0f;
    }
    return;
  }

  const int32_t* table = block_tables + seq * max_blocks;
  for (int kk = threadIdx.x; kk < count; kk += blockDim.x) {
    const int64_t position = begin + kk;
    const int64_t block = table[position / cache.block_size];
    const int64_t slot = position % cache.block_size;
    key_base[kk] = (block >= 0 && block < cache.num_blocks)
                       ? ((block * cache.block_size + slot) * cache.kv_heads + kv_head) * head_dim
                       : -1;
  }
  for (int i = threadIdx.x; i < group * head_dim; i += blockDim.x) {
    const int g = i / head_dim;
    const int d = i % head_dim;
    q_s[i] = detail::to_f32(q[seq * q_stride + static_cast<int64_t>(kv_head * group + g) * head_dim + d]);
  }
  __syncthreads();

  // Scores: a warp per key, its lanes across head_dim; the K row stays in registers for every query head.
  for (int kk = warp; kk < count; kk += warps) {
    const int64_t base = key_base[kk];
    float k_reg[kMaxPerLane];
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
      const int d = lane + 32 * i;
      k_reg[i] = (base >= 0 && d < head_dim) ? detail::to_f32(cache.k[base + d]) : 0.0f;
    }
    for (int g = 0; g < group; ++g) {
      float partial = 0.0f;
#pragma unroll
      for (int i = 0; i < kMaxPerLane; ++i) {
        const int d = lane + 32 * i;
        if (d < head_dim) partial += q_s[g * head_dim + d] * k_reg[i];
      }
      const float dot = detail::warp_sum(partial);
      if (lane == 0) scores[g * kPartition + kk] = dot * scale;
    }
  }
  __syncthreads();

  // Softmax within the partition, one warp per query head.
  for (int g = warp; g < group; g += warps) {
    float* row = scores + g * kPartition;
    float m = -CUDART_INF_F;
    for (int kk = lane; kk < count; kk += 32) m = fmaxf(m, row[kk]);
    m = detail::warp_max(m);
    float l = 0.0f;
    for (int kk = lane; kk < count; kk += 32) {
      const float e = expf(row[kk] - m);
      row[kk] = e;
      l += e;
    }
    l = detail::warp_sum(l);
    if (lane == 0) {
      row_max[g] = m;
      row_sum[g] = l;
    }
  }
  __syncthreads();

  // Weighted sum of V: a thread per (query head, dimension); consecutive threads read consecutive elements.
  for (int i = threadIdx.x; i < group * head_dim; i += blockDim.x) {
    const int g = i / head_dim;
    const int d = i % head_dim;
    const float* p = scores + g * kPartition;
    float acc = 0.0f;
    for (int kk = 0; kk < count; ++kk) {
      const int64_t base = key_base[kk];
      if (base >= 0) acc += p[kk] * detail::to_f32(cache.v[base + d]);
    }
    const int head = kv_head * group + g;
    if (num_partitions == 1) {
      out[seq * out_stride + static_cast<int64_t>(head) * head_dim + d] = detail::from_f32<T>(acc / row_sum[g]);
    } else {
      const int64_t slot = (seq * heads + head) * num_partitions + part;
      partial_out[slot * head_dim + d] = acc / row_sum[g];
      if (d == 0) {
        partial_max[slot] = row_max[g];
        partial_sum[slot] = row_sum[g];
      }
    }
  }
}

// Merges the partitions of one (sequence, head): weights sum_p * exp(max_p - max).
template <class T>
__global__ void decode_merge_kernel(const float* __restrict__ partial_out, const float* __restrict__ partial_max,
                                    const float* __restrict__ partial_sum, int num_partitions, int heads, int head_dim,
                                    T* __restrict__ out, int64_t out_stride) {
  const int64_t seq = blockIdx.x;
  const int head = blockIdx.y;
  const int64_t first = (seq * heads + head) * num_partitions;
  float m = -CUDART_INF_F;
  for (int p = 0; p < num_partitions; ++p) m = fmaxf(m, partial_max[first + p]);
  float total = 0.0f;
  for (int p = 0; p < num_partitions; ++p) {
    const float s = partial_sum[first + p];
    if (s > 0.0f) total += s * expf(partial_max[first + p] - m);
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int p = 0; p < num_partitions; ++p) {
      const float s = partial_sum[first + p];
      if (s > 0.0f) acc += s * expf(partial_max[first + p] - m) * partial_out[(first + p) * head_dim + d];
    }
    out[seq * out_stride + static_cast<int64_t>(head) * head_dim + d] = detail::from_f32<T>(acc / total);
  }
}

template <class T>
void launch(const DeviceKvCache<T>& cache, const int32_t* block_tables, int64_t max_blocks_per_seq,
            const int32_t* context_lens, int64_t max_context_len, int64_t num_seqs, const T* q, int64_t q_stride,
            int64_t heads, float scale, T* out, int64_t out_stride, AttentionWorkspace& workspace,
            cudaStream_t stream) {
  TESSERA_CHECK(cache.block_size > 0 && cache.kv_heads > 0 && cache.head_dim > 0 && cache.head_dim <= kMaxHeadDim,
                "paged_attention_decode (CUDA): bad cache shape block_size=", cache.block_size, " kv_heads=",
                cache.kv_heads, " head_dim=", cache.head_dim, " (head_dim <= ", kMaxHeadDim, ")");
  TESSERA_CHECK(heads > 0 && heads % cache.kv_heads == 0 && heads / cache.kv_heads <= kMaxGroup,
                "paged_attention_decode (CUDA): ", heads, " query heads over ", cache.kv_heads,
                " KV heads (a multiple, at most ", kMaxGroup, " per KV head)");
  TESSERA_CHECK(num_seqs >= 0 && num_seqs <= INT32_MAX && max_context_len >= 0, "paged_attention_decode (CUDA): bad sizes num_seqs=",
                num_seqs, " max_context_len=", max_context_len);
  TESSERA_CHECK(max_blocks_per_seq * cache.block_size >= max_context_len, "paged_attention_decode (CUDA): ",
                max_blocks_per_seq, " blocks per sequence cover fewer than ", max_context_len, " positions");
  TESSERA_CHECK(q_stride >= heads * cache.head_dim && out_stride >= heads * cache.head_dim,
                "paged_attention_decode (CUDA): q/out strides ", q_stride, "/", out_stride,
                " are smaller than heads * head_dim = ", heads * cache.head_dim);
  if (num_seqs == 0 || max_context_len == 0) return;
  const int group = static_cast<int>(heads / cache.kv_heads);
  const int partitions = static_cast<int>((max_context_len + kPartition - 1) / kPartition);
  float* partial_out = nullptr;
  float* partial_max = nullptr;
  float* partial_sum = nullptr;
  if (partitions > 1) {
    const size_t slots = static_cast<size_t>(num_seqs * heads) * static_cast<size_t>(partitions);
    float* base = workspace.reserve(slots * static_cast<size_t>(cache.head_dim + 2));
    partial_out = base;
    partial_max = base + slots * static_cast<size_t>(cache.head_dim);
    partial_sum = partial_max + slots;
  }
  const size_t shared = static_cast<size_t>(group) * static_cast<size_t>(cache.head_dim + kPartition) * sizeof(float);
  const dim3 grid(static_cast<unsigned>(num_seqs), static_cast<unsigned>(cache.kv_heads), static_cast<unsigned>(partitions));
  decode_partition_kernel<T><<<grid, kThreads, shared, stream>>>(cache, block_tables, max_blocks_per_seq, context_lens,
                                                                 q, q_stride, group, scale, out, out_stride,
                                                                 partial_out, partial_max, partial_sum, partitions);
  TESSERA_CUDA_CHECK(cudaGetLastError());
  if (partitions > 1) {
    const dim3 merge_grid(static_cast<unsigned>(num_seqs), static_cast<unsigned>(heads));
    decode_merge_kernel<T><<<merge_grid, kThreads, 0, stream>>>(partial_out, partial_max, partial_sum, partitions,
                                                                static_cast<int>(heads),
                                                                static_cast<int>(cache.head_dim), out, out_stride);
    TESSERA_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

AttentionWorkspace::~AttentionWorkspace() {
  if (data_ != nullptr) cudaFree(data_);
}

float* AttentionWorkspace::reserve(size_t floats) {
  if (floats <= capacity_) return data_;
  if (data_ != nullptr) {
    TESSERA_CUDA_CHECK(cudaDeviceSynchronize());  // queued kernels may still use the old scratch
    cudaFree(data_);
    data_ = nullptr;
    capacity_ = 0;
  }
  const size_t target = floats + floats / 2;
  TESSERA_CUDA_CHECK(cudaMalloc(&data_, target * sizeof(float)));
  capacity_ = target;
  return data_;
}

void paged_attention_decode(const DeviceKvCache<float>& cache, const int32_t* block_tables, int64_t max_blocks_per_seq,
                            const int32_t* context_lens, int64_t max_context_len, int64_t num_seqs, const float* q,
                            int64_t q_seq_stride, int64_t heads, float scale, float* out, int64_t out_seq_stride,
                            AttentionWorkspace& workspace, cudaStream_t stream) {
  launch(cache, block_tables, max_blocks_per_seq, context_lens, max_context_len, num_seqs, q, q_seq_stride, heads,
         scale, out, out_seq_stride, workspace, stream);
}
void paged_attention_decode(const DeviceKvCache<__nv_bfloat16>& cache, const int32_t* block_tables,
                            int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t max_context_len,
                            int64_t num_seqs, const __nv_bfloat16* q, int64_t q_seq_stride, int64_t heads, float scale,
                            __nv_bfloat16* out, int64_t out_seq_stride, AttentionWorkspace& workspace,
                            cudaStream_t stream) {
  launch(cache, block_tables, max_blocks_per_seq, context_lens, max_context_len, num_seqs, q, q_seq_stride, heads,
         scale, out, out_seq_stride, workspace, stream);
}

}  // namespace tessera::kernels::cuda
