#pragma once
// Token sampling from f32 logits on the GPU, the CPU twin's semantics (kernels/cpu/sampling.h): temperature 0 is
// greedy argmax (ties -> lowest id); otherwise logits / temperature -> top-k -> softmax -> top-p -> min-p ->
// renormalise -> one draw from the same seeded xoshiro256** stream (SamplingRng::for_step(seed, step)), so a
// replay draws the same tokens. The distribution is the CPU's (softmax in f64, same tie-breaking); the draw walks
// it in the canonical order (most likely first, lower id on ties), whereas the CPU walks it in an unspecified
// order, so with the same seed the two backends may pick different tokens from the same distribution; greedy
// picks are identical.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/sampling.h"

namespace tessera::kernels::cuda {

// out_ids[r] = argmax of row r of logits [rows, vocab] (device); ties -> lowest index; NaN entries never win.
void argmax(const float* logits, int64_t rows, int64_t vocab, int32_t* out_ids, cudaStream_t stream);

// Owns the device scratch of sampling (sorted copies of the logits, per-row parameters, CUB's temporary
// storage), grown on demand. One per stream; not thread-safe.
class GpuSampler {
 public:
  GpuSampler() = default;
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  // out_ids[r] (device) = a token of row r of logits [rows, vocab] (device), drawn with params[r] and the
  // generator of (params[r].seed, steps[r]) (host arrays). Throws tessera::Error on parameters out of range
  // (as the CPU does). Rows with temperature > 0 cost a segmented radix sort of their logits.
  void sample(const float* logits, int64_t rows, int64_t vocab, const cpu::SamplingParams* params,
              const uint64_t* steps, int32_t* out_ids, cudaStream_t stream);

 private:
  void* grow(void*& buffer, size_t& capacity, size_t bytes);

  void* sorted_logits_ = nullptr;
  size_t sorted_logits_bytes_ = 0;
  void* ids_ = nullptr;  // iota, then sorted ids
  size_t ids_bytes_ = 0;
  void* sorted_ids_ = nullptr;
  size_t sorted_ids_bytes_ = 0;
  void* offsets_ = nullptr;
  size_t offsets_bytes_ = 0;
  void* params_ = nullptr;
  size_t params_bytes_ = 0;
  void* cub_temp_ = nullptr;
  size_t cub_temp_bytes_ = 0;
};

}  // namespace tessera::kernels::cuda
