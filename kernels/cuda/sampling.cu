#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <math_constants.h>

#include <climits>
#include <cmath>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/sampling.h"

namespace tessera::kernels::cuda {
namespace {

constexpr int kArgmaxThreads = 512;
constexpr int kSampleThreads = 1024;

struct RowParams {
  float temperature;
  int top_k;
  float top_p;
  float min_p;
  uint64_t seed;
  uint64_t step;
};

// The CPU's generator (kernels/cpu/sampling.cpp), operation for operation.
__device__ uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
__device__ uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// SamplingRng::for_step(seed, step).uniform(): the one number a sampling step draws.
__device__ double step_uniform(uint64_t seed, uint64_t step) {
  uint64_t a = seed;
  uint64_t b = splitmix64(a) ^ step;
  uint64_t state = splitmix64(b);
  uint64_t s[4];
  for (auto& word : s) word = splitmix64(state);
  const uint64_t result = rotl(s[1] * 5, 7) * 9;  // the first output of xoshiro256**
  return static_cast<double>(result >> 11) * 0x1.0p-53;
}

__global__ void __launch_bounds__(kArgmaxThreads) argmax_kernel(const float* __restrict__ logits, int64_t vocab, int32_t* __restrict__ out_ids) {
  __shared__ float best_values[32];
  __shared__ int64_t best_indices[32];
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float best = -CUDART_INF_F;
  int64_t index = LLONG_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float v = row[i];
    if (v > best || (index == LLONG_MAX && v == best)) {  // strict: the first of equal maxima stays
      best = v;
      index = i;
    }
  }
  const auto better = [](float v, int64_t i, float w, int64_t j) { return w > v || (w == v && j < i); };
  for (int offset = 16; offset > 0; offset /= 2) {
    const float w = __shfl_xor_sync(0xffffffffu, best, offset);
    const int64_t j = __shfl_xor_sync(0xffffffffu, index, offset);
    if (better(best, index, w, j)) {
      best = w;
      index = j;
    }
  }
  if (threadIdx.x % 32 == 0) {
    best_values[threadIdx.x / 32] = best;
    best_indices[threadIdx.x / 32] = index;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) {
      if (better(best, index, best_values[w], best_indices[w])) {
        best = best_values[w];
        index = best_indices[w];
      }
    }
    out_ids[blockIdx.x] = index == LLONG_MAX ? 0 : static_cast<int32_t>(index);  // all NaN: 0
  }
}

__global__ void segment_setup_kernel(int32_t* __restrict__ ids, int64_t* __restrict__ offsets, int64_t rows,
                                     int64_t vocab) {
  const int64_t total = rows * vocab;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    ids[i] = static_cast<int32_t>(i % vocab);
    if (i % vocab == 0) offsets[i / vocab] = i;
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) offsets[rows] = total;
}

// Over the sorted row: the first index i < limit whose inclusive prefix sum of weight(0..i), divided by
// `denominator`, reaches `threshold` (>= when !strict, > when strict). Returns limit when none does.
// Every thread of the block must call it.
template <class Weight>
__device__ int64_t first_prefix_reaching(const Weight& weight, int64_t limit, double denominator, double threshold,
                                         bool strict) {
  using Scan = cub::BlockScan<double, kSampleThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ unsigned long long found;
  __shared__ double carry;
  if (threadIdx.x == 0) {
    found = ULLONG_MAX;
    carry = 0.0;
  }
  __syncthreads();
  for (int64_t base = 0; base < limit; base += kSampleThreads) {
    const int64_t i = base + threadIdx.x;
    const double w = i < limit ? weight(i) : 0.0;
    double inclusive = 0.0;
    Scan(scan_storage).InclusiveSum(w, inclusive);
    inclusive += carry;
    const double fraction = inclusive / denominator;
    const bool hit = i < limit && (strict ? fraction > threshold : fraction >= threshold);
    if (hit) atomicMin(&found, static_cast<unsigned long long>(i));
    __syncthreads();  // every thread has read `carry` and posted its hit
    if (threadIdx.x == kSampleThreads - 1) carry = inclusive;
    const bool done = found != ULLONG_MAX;
    __syncthreads();
    if (done) break;
  }
  return found == ULLONG_MAX ? limit : static_cast<int64_t>(found);
}

// One block per row whose temperature is > 0; the row is sorted by logit, descending (stable: lower ids
// first among ties), so every filter of the CPU becomes a cut of a prefix.
__global__ void __launch_bounds__(kSampleThreads) sample_sorted_kernel(const float* __restrict__ sorted_logits, const int32_t* __restrict__ sorted_ids,
                                     int64_t vocab, const RowParams* __restrict__ params, int32_t* __restrict__ out_ids) {
  using Reduce = cub::BlockReduce<double, kSampleThreads>;
  using CountReduce = cub::BlockReduce<long long, kSampleThreads>;
  __shared__ typename Reduce::TempStorage reduce_storage;
  __shared__ typename CountReduce::TempStorage count_storage;
  __shared__ double shared_sum;
  __shared__ long long shared_count;
  __shared__ unsigned long long min_p_cut;
  const int64_t row = blockIdx.x;
  const RowParams p = params[row];
  if (p.temperature == 0.0f) return;  // greedy: argmax_kernel wrote it
  const float* keys = sorted_logits + row * vocab;
  const int32_t* ids = sorted_ids + row * vocab;

  // -inf (forbidden) tokens sort last; they are not candidates.
  long long finite = 0;
  for (int64_t i = threadIdx.x; i < vocab; i += kSampleThreads) finite += keys[i] != -CUDART_INF_F ? 1 : 0;
  finite = CountReduce(count_storage).Sum(finite);
  if (threadIdx.x == 0) shared_count = finite;
  __syncthreads();
  int64_t cut = shared_count;
  if (cut == 0) {  // every logit -inf: the CPU throws; the GPU cannot, and returns the argmax (token 0)
    return;
  }
  if (p.top_k > 0 && p.top_k < cut) cut = p.top_k;

  // Softmax in f64 as on the CPU: logit / temperature, weights exp(l - max), the top weight exactly 1.
  const double temperature = p.temperature;
  const double max_logit = static_cast<double>(keys[0]) / temperature;
  const auto weight = [&](int64_t i) { return exp(static_cast<double>(keys[i]) / temperature - max_logit); };

  double local = 0.0;
  for (int64_t i = threadIdx.x; i < cut; i += kSampleThreads) local += weight(i);
  const double total = Reduce(reduce_storage).Sum(local);
  if (threadIdx.x == 0) shared_sum = total;
  __syncthreads();
  if (p.top_p < 1.0f) {
    const int64_t reached = first_prefix_reaching(weight, cut, shared_sum, static_cast<double>(p.top_p), false);
    if (reached < cut) cut = reached + 1;  // not reached (rounding): the whole set is the nucleus, as on the CPU
  }
  if (p.min_p > 0.0f) {
    // Weights do not increase along the sorted row: the survivors are a prefix.
    if (threadIdx.x == 0) min_p_cut = static_cast<unsigned long long>(cut);
    __syncthreads();
    const double threshold = static_cast<double>(p.min_p);
    for (int64_t i = threadIdx.x; i < cut; i += kSampleThreads) {
      if (weight(i) < threshold) atomicMin(&min_p_cut, static_cast<unsigned long long>(i));
    }
    __syncthreads();
    cut = static_cast<int64_t>(min_p_cut);
    if (cut < 1) cut = 1;
  }

  local = 0.0;
  for (int64_t i = threadIdx.x; i < cut; i += kSampleThreads) local += weight(i);
  __syncthreads();  // reduce_storage is reused
  const double kept = Reduce(reduce_storage).Sum(local);
  if (threadIdx.x == 0) shared_sum = kept;
  __syncthreads();
  const double u = step_uniform(p.seed, p.step);
  int64_t chosen = first_prefix_reaching(weight, cut, shared_sum, u, true);
  if (chosen >= cut) chosen = cut - 1;  // u within rounding of 1
  if (threadIdx.x == 0) out_ids[row] = ids[chosen];
}

void check_params(const cpu::SamplingParams& p, int64_t row) {
  TESSERA_CHECK(std::isfinite(p.temperature) && p.temperature >= 0.0f, "sampling (CUDA), row ", row,
                ": temperature must be finite and >= 0, got ", p.temperature);
  TESSERA_CHECK(p.top_p >= 0.0f && p.top_p <= 1.0f, "sampling (CUDA), row ", row, ": top_p must be in [0, 1], got ",
                p.top_p);
  TESSERA_CHECK(p.min_p >= 0.0f && p.min_p <= 1.0f, "sampling (CUDA), row ", row, ": min_p must be in [0, 1], got ",
                p.min_p);
}

}  // namespace

void argmax(const float* logits, int64_t rows, int64_t vocab, int32_t* out_ids, cudaStream_t stream) {
  TESSERA_CHECK(rows >= 0 && rows <= INT32_MAX && vocab >= 1 && vocab <= INT32_MAX, "argmax (CUDA): bad sizes rows=",
                rows, " vocab=", vocab);
  if (rows == 0) return;
  argmax_kernel<<<static_cast<unsigned>(rows), kArgmaxThreads, 0, stream>>>(logits, vocab, out_ids);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

GpuSampler::~GpuSampler() {
  for (void* buffer : {sorted_logits_, ids_, sorted_ids_, offsets_, params_, cub_temp_}) {
    if (buffer != nullptr) cudaFree(buffer);
  }
}

void* GpuSampler::grow(void*& buffer, size_t& capacity, size_t bytes) {
  if (bytes <= capacity && buffer != nullptr) return buffer;
  if (buffer != nullptr) {
    TESSERA_CUDA_CHECK(cudaDeviceSynchronize());  // queued kernels may still use it
    cudaFree(buffer);
    buffer = nullptr;
    capacity = 0;
  }
  TESSERA_CUDA_CHECK(cudaMalloc(&buffer, bytes));
  capacity = bytes;
  return buffer;
}

void GpuSampler::sample(const float* logits, int64_t rows, int64_t vocab, const cpu::SamplingParams* params,
                        const uint64_t* steps, int32_t* out_ids, cudaStream_t stream) {
  TESSERA_CHECK(rows >= 0 && vocab >= 1 && vocab <= INT32_MAX && rows * vocab <= INT32_MAX,
                "sampling (CUDA): bad sizes rows=", rows, " vocab=", vocab, " (rows * vocab must fit in int32)");
  if (rows == 0) return;
  std::vector<RowParams> host(static_cast<size_t>(rows));
  bool any_random = false;
  for (int64_t r = 0; r < rows; ++r) {
    const cpu::SamplingParams& p = params[r];
    check_params(p, r);
    host[static_cast<size_t>(r)] = RowParams{p.temperature, p.top_k, p.top_p, p.min_p, p.seed, steps[r]};
    any_random = any_random || p.temperature > 0.0f;
  }
  argmax(logits, rows, vocab, out_ids, stream);
  if (!any_random) return;

  const size_t total = static_cast<size_t>(rows * vocab);
  auto* device_params = static_cast<RowParams*>(grow(params_, params_bytes_, host.size() * sizeof(RowParams)));
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(device_params, host.data(), host.size() * sizeof(RowParams),
                                     cudaMemcpyHostToDevice, stream));
  auto* sorted = static_cast<float*>(grow(sorted_logits_, sorted_logits_bytes_, total * sizeof(float)));
  auto* ids = static_cast<int32_t*>(grow(ids_, ids_bytes_, total * sizeof(int32_t)));
  auto* sorted_ids = static_cast<int32_t*>(grow(sorted_ids_, sorted_ids_bytes_, total * sizeof(int32_t)));
  auto* offsets = static_cast<int64_t*>(grow(offsets_, offsets_bytes_, static_cast<size_t>(rows + 1) * sizeof(int64_t)));
  const unsigned setup_blocks = static_cast<unsigned>(std::min<size_t>((total + 255) / 256, 65535));
  segment_setup_kernel<<<setup_blocks, 256, 0, stream>>>(ids, offsets, rows, vocab);
  TESSERA_CUDA_CHECK(cudaGetLastError());

  size_t temp_bytes = 0;
  TESSERA_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
      nullptr, temp_bytes, logits, sorted, ids, sorted_ids, static_cast<int64_t>(total), rows, offsets, offsets + 1, 0,
      32, stream));
  void* temp = grow(cub_temp_, cub_temp_bytes_, temp_bytes);
  TESSERA_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
      temp, temp_bytes, logits, sorted, ids, sorted_ids, static_cast<int64_t>(total), rows, offsets, offsets + 1, 0,
      32, stream));
  sample_sorted_kernel<<<static_cast<unsigned>(rows), kSampleThreads, 0, stream>>>(sorted, sorted_ids, vocab,
                                                                                  device_params, out_ids);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace tessera::kernels::cuda
