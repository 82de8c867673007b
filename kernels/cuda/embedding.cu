#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/embedding.h"

namespace tessera::kernels::cuda {
namespace {

template <class TableT, class OutT>
__global__ void embedding_kernel(const int32_t* __restrict__ ids, const TableT* __restrict__ table,
                                 int64_t vocab_begin, int64_t vocab_end, int64_t vocab_size, int64_t hidden,
                                 OutT* __restrict__ out, int32_t* bad_position) {
  const int64_t token = blockIdx.x;
  const int64_t id = ids[token];
  OutT* row = out + token * hidden;
  if (id < 0 || id >= vocab_size) {
    if (bad_position != nullptr && threadIdx.x == 0) atomicMin(bad_position, static_cast<int32_t>(token));
  }
  if (id < vocab_begin || id >= vocab_end) {
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) row[i] = detail::from_f32<OutT>(0.0f);
    return;
  }
  const TableT* src = table + (id - vocab_begin) * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) row[i] = detail::from_f32<OutT>(detail::to_f32(src[i]));
}

template <class TableT, class OutT>
void launch(const int32_t* ids, int64_t count, const TableT* table, int64_t vocab_begin, int64_t vocab_end,
            int64_t vocab_size, int64_t hidden, OutT* out, cudaStream_t stream, int32_t* bad_position) {
  TESSERA_CHECK(count >= 0 && hidden >= 0 && count <= INT32_MAX, "embedding_lookup (CUDA): bad sizes count=", count,
                " hidden=", hidden);
  TESSERA_CHECK(0 <= vocab_begin && vocab_begin <= vocab_end && vocab_end <= vocab_size,
                "embedding_lookup (CUDA): bad vocabulary range [", vocab_begin, ", ", vocab_end, ") of ", vocab_size);
  if (count == 0 || hidden == 0) return;
  embedding_kernel<<<static_cast<unsigned>(count), 256, 0, stream>>>(ids, table, vocab_begin, vocab_end, vocab_size,
                                                                      hidden, out, bad_position);
  TESSERA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void embedding_lookup(const int32_t* ids, int64_t count, const __nv_bfloat16* table, int64_t vocab_begin,
                      int64_t vocab_end, int64_t vocab_size, int64_t hidden, __nv_bfloat16* out, cudaStream_t stream,
                      int32_t* bad_position) {
  launch(ids, count, table, vocab_begin, vocab_end, vocab_size, hidden, out, stream, bad_position);
}
void embedding_lookup(const int32_t* ids, int64_t count, const float* table, int64_t vocab_begin, int64_t vocab_end,
                      int64_t vocab_size, int64_t hidden, float* out, cudaStream_t stream, int32_t* bad_position) {
  launch(ids, count, table, vocab_begin, vocab_end, vocab_size, hidden, out, stream, bad_position);
}
void embedding_lookup(const int32_t* ids, int64_t count, const __nv_bfloat16* table, int64_t vocab_begin,
                      int64_t vocab_end, int64_t vocab_size, int64_t hidden, float* out, cudaStream_t stream,
                      int32_t* bad_position) {
  launch(ids, count, table, vocab_begin, vocab_end, vocab_size, hidden, out, stream, bad_position);
}

}  // namespace tessera::kernels::cuda
