// The AVX2+FMA build of one query head's attention (attention_head.h). Compiled under a target region
// (kernels/cpu/target_region.h) holding only intrinsics and internal-linkage code, as the block kernels.
//
// Why its own build: decode attention is two short vector loops per cached position (q . k, then out += p v) over
// head_dim floats; the portable build runs them on SSE2 at 4 lanes with separate multiplies and adds. Here head_dim
// / 8 FMAs do each, and for the common head sizes (32, 64, 128) the output row stays in registers across all positions
// instead of being loaded and stored per position. An f16 cache's rows are widened 8 elements at a time with F16C
// (exact) and then take the f32 rows' operations.
#include "kernels/cpu/attention_head.h"

#include <cmath>
#include <cstdint>

#include "kernels/cpu/target_region.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

TESSERA_TARGET_REGION_BEGIN("avx2,fma,f16c")

#include "kernels/cpu/vector_avx2.h"
#include "kernels/cpu/vector_exp_avx2.h"

namespace tessera::kernels::cpu::detail {
namespace {

// 8 cache elements as f32.
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// scores[0, n) = e^(scores[j] - max), and returns their sum: 8 at a time (the last group masked), the sum in 8 lanes
// then the fixed horizontal sum. The same operations for every call with the same n, whichever token or tile it is
// for (batch invariance); the portable build's std::exp and sequential sum differ from it in the last bits.
inline float exp_in_place(float* scores, int64_t n, float max) {
  const __m256 m = _mm256_set1_ps(max);
  __m256 total = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + j), m));
    _mm256_storeu_ps(scores + j, e);
    total = _mm256_add_ps(total, e);
  }
  if (j < n) {
    const __m256i lanes = first_lanes(n - j);
    const __m256 e = _mm256_and_ps(_mm256_castsi256_ps(lanes),
                                   exp8(_mm256_sub_ps(_mm256_maskload_ps(scores + j, lanes), m)));
    _mm256_maskstore_ps(scores + j, lanes, e);
    total = _mm256_add_ps(total, e);
  }
  return horizontal_sum(total);
}

// q . k over V * 8 floats (V = 0: dim floats, dim % 8 == 0), one 8-lane accumulator, then a fixed horizontal sum.
template <int V, class Element>
inline float dot8(const float* q, const Element* k, int64_t dim) {
  __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(q), load8(k));
  const int64_t n = V > 0 ? V * 8 : dim;
  for (int64_t d = 8; d < n; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load8(k + d), acc);
  return horizontal_sum(acc);
}

// V > 0: the output row in V registers; V == 0: any dim % 8 == 0, accumulated in `out` itself.
template <int V, class Element>
void attend(const HeadView<Element>& h, const float* q, float scale, float* scores, float* out) {
  float max_score = -INFINITY;
  for (int64_t first = 0; first < h.context; first += h.block_size) {
    const Element* k = h.k + h.slot_offset(first);
    const int64_t count = h.context - first < h.block_size ? h.context - first : h.block_size;
    for (int64_t s = 0; s < count; ++s) {
      const float score = dot8<V>(q, k + s * h.row_stride, h.dim) * scale;
      scores[first + s] = score;
      max_score = score > max_score ? score : max_score;
    }
  }
  const __m256 inv_total = _mm256_set1_ps(1.0f / exp_in_place(scores, h.context, max_score));
  if constexpr (V > 0) {
    __m256 acc[V];
    for (int v = 0; v < V; ++v) acc[v] = _mm256_setzero_ps();
    for (int64_t first = 0; first < h.context; first += h.block_size) {
      const Element* vrow = h.v + h.slot_offset(first);
      const int64_t count = h.context - first < h.block_size ? h.context - first : h.block_size;
      for (int64_t s = 0; s < count; ++s) {
        const __m256 p = _mm256_set1_ps(scores[first + s]);
        const Element* row = vrow + s * h.row_stride;
        for (int v = 0; v < V; ++v) acc[v] = _mm256_fmadd_ps(p, load8(row + 8 * v), acc[v]);
      }
    }
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(out + 8 * v, _mm256_mul_ps(acc[v], inv_total));
  } else {
    for (int64_t d = 0; d < h.dim; d += 8) _mm256_storeu_ps(out + d, _mm256_setzero_ps());
    for (int64_t first = 0; first < h.context; first += h.block_size) {
      const Element* vrow = h.v + h.slot_offset(first);
      const int64_t count = h.context - first < h.block_size ? h.context - first : h.block_size;
      for (int64_t s = 0; s < count; ++s) {
        const __m256 p = _mm256_set1_ps(scores[first + s]);
        for (int64_t d = 0; d < h.dim; d += 8) {
          _mm256_storeu_ps(out + d,
                           _mm256_fmadd_ps(p, load8(vrow + s * h.row_stride + d), _mm256_loadu_ps(out + d)));
        }
      }
    }
    for (int64_t d = 0; d < h.dim; d += 8) {
      _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(out + d), inv_total));
    }
  }
}

// T consecutive query tokens of one head (a prefill chunk), dim = 8 V: token i's query at q + i * q_stride, its
// output at out + i * out_stride, its context h.context + i (causal: it also sees the tokens before it). One pass
// over the cached rows serves all T, where a token at a time loaded each K and V row T times and ran one FMA chain at
// a time. Per token the operations are attend's, in the same order (a score: dot8's chain over the row's vectors,
// then the fixed horizontal sum; an output lane: one FMA per position in position order from zero; the softmax
// exp_in_place), so a token's bits do not depend on T or on the chunk it came in with (tests/kernels/test_attention.cpp,
// PrefillGivesEachTokenItsDecodeBits).
template <int V, int T, class Element>
void attend_tokens(const HeadView<Element>& h, const float* q, int64_t q_stride, float scale, float* scores,
                   float* out, int64_t out_stride) {
  const int64_t last = h.context + T - 1;  // the last token's context; token i's scores at scores + i * last
  float max_score[T];
  for (int i = 0; i < T; ++i) max_score[i] = -INFINITY;
  for (int64_t first = 0; first < last; first += h.block_size) {
    const Element* k = h.k + h.slot_offset(first);
    const int64_t count = last - first < h.block_size ? last - first : h.block_size;
    for (int64_t s = 0; s < count; ++s) {
      const int64_t position = first + s;
      // Tokens i with position < h.context + i see this position; the others' chains are computed and dropped.
      const int i0 = position < h.context ? 0 : static_cast<int>(position - h.context + 1);
      const Element* row = k + s * h.row_stride;
      __m256 acc[T];
      const __m256 r0 = load8(row);
      for (int i = 0; i < T; ++i) acc[i] = _mm256_mul_ps(_mm256_loadu_ps(q + i * q_stride), r0);
      for (int v = 1; v < V; ++v) {
        const __m256 r = load8(row + 8 * v);
        for (int i = 0; i < T; ++i) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(q + i * q_stride + 8 * v), r, acc[i]);
      }
      for (int i = i0; i < T; ++i) {
        const float score = horizontal_sum(acc[i]) * scale;
        scores[i * last + position] = score;
        max_score[i] = score > max_score[i] ? score : max_score[i];
      }
    }
  }
  __m256 inv_total[T];
  for (int i = 0; i < T; ++i) {
    inv_total[i] = _mm256_set1_ps(1.0f / exp_in_place(scores + i * last, h.context + i, max_score[i]));
  }
  // The outputs in chunks of C vectors per token, so that T * C accumulators stay in the 16 registers.
  constexpr int kFit = 12 / T;
  constexpr int C = kFit >= V ? V : kFit >= 8 ? 8 : kFit >= 4 ? 4 : kFit >= 2 ? 2 : 1;
  for (int c0 = 0; c0 < V; c0 += C) {
    __m256 acc[T][C];
    for (int i = 0; i < T; ++i) {
      for (int c = 0; c < C; ++c) acc[i][c] = _mm256_setzero_ps();
    }
    for (int64_t first = 0; first < last; first += h.block_size) {
      const Element* vblock = h.v + h.slot_offset(first) + 8 * c0;
      const int64_t count = last - first < h.block_size ? last - first : h.block_size;
      for (int64_t s = 0; s < count; ++s) {
        const int64_t position = first + s;
        const int i0 = position < h.context ? 0 : static_cast<int>(position - h.context + 1);
        const Element* row = vblock + s * h.row_stride;
        __m256 r[C];
        for (int c = 0; c < C; ++c) r[c] = load8(row + 8 * c);
        for (int i = 0; i < T; ++i) {
          if (i < i0) continue;  // this position is after token i
          const __m256 weight = _mm256_set1_ps(scores[i * last + position]);
          for (int c = 0; c < C; ++c) acc[i][c] = _mm256_fmadd_ps(weight, r[c], acc[i][c]);
        }
      }
    }
    for (int i = 0; i < T; ++i) {
      for (int c = 0; c < C; ++c) {
        _mm256_storeu_ps(out + i * out_stride + 8 * (c0 + c), _mm256_mul_ps(acc[i][c], inv_total[i]));
      }
    }
  }
}

template <int V, class Element>
void attend_tokens_of(const HeadView<Element>& h, int64_t count, const float* q, int64_t q_stride, float scale,
                      float* scores, float* out, int64_t out_stride) {
  switch (count) {
    case 1: attend<V>(h, q, scale, scores, out); break;
    case 2: attend_tokens<V, 2>(h, q, q_stride, scale, scores, out, out_stride); break;
    case 3: attend_tokens<V, 3>(h, q, q_stride, scale, scores, out, out_stride); break;
    default: attend_tokens<V, 4>(h, q, q_stride, scale, scores, out, out_stride); break;
  }
}

template <class Element>
void attend_tokens_any(const HeadView<Element>& h, int64_t count, const float* q, int64_t q_stride, float scale,
                       float* scores, float* out, int64_t out_stride) {
  switch (h.dim) {
    case 32: attend_tokens_of<4>(h, count, q, q_stride, scale, scores, out, out_stride); break;
    case 64: attend_tokens_of<8>(h, count, q, q_stride, scale, scores, out, out_stride); break;
    case 128: attend_tokens_of<16>(h, count, q, q_stride, scale, scores, out, out_stride); break;
    default: {  // the generic head size: one token at a time
      HeadView<Element> one = h;
      for (int64_t i = 0; i < count; ++i, ++one.context) {
        attend<0>(one, q + i * q_stride, scale, scores, out + i * out_stride);
      }
    }
  }
}

template <class Element>
void attend_any(const HeadView<Element>& h, const float* q, float scale, float* scores, float* out) {
  switch (h.dim) {
    case 32: attend<4>(h, q, scale, scores, out); break;
    case 64: attend<8>(h, q, scale, scores, out); break;
    case 128: attend<16>(h, q, scale, scores, out); break;
    default: attend<0>(h, q, scale, scores, out); break;
  }
}

}  // namespace

void attend_head_avx2(const HeadView<float>& h, const float* q, float scale, float* scores, float* out) {
  attend_any(h, q, scale, scores, out);
}

void attend_head_avx2(const HeadView<uint16_t>& h, const float* q, float scale, float* scores, float* out) {
  attend_any(h, q, scale, scores, out);
}

float softmax_exp_avx2(float* scores, int64_t n, float max) { return exp_in_place(scores, n, max); }

void attend_tokens_avx2(const HeadView<float>& h, int64_t count, const float* q, int64_t q_stride, float scale,
                        float* scores, float* out, int64_t out_stride) {
  attend_tokens_any(h, count, q, q_stride, scale, scores, out, out_stride);
}

void attend_tokens_avx2(const HeadView<uint16_t>& h, int64_t count, const float* q, int64_t q_stride, float scale,
                        float* scores, float* out, int64_t out_stride) {
  attend_tokens_any(h, count, q, q_stride, scale, scores, out, out_stride);
}

}  // namespace tessera::kernels::cpu::detail

TESSERA_TARGET_REGION_END()

#else  // not x86: never called (packed_isa() is kScalar there)

#include <cmath>
#include <vector>

namespace tessera::kernels::cpu::detail {
void attend_head_avx2(const HeadView<float>& h, const float* q, float scale, float* scores, float* out) {
  attend_head_portable(h, q, scale, scores, out);
}
void attend_head_avx2(const HeadView<uint16_t>& h, const float* q, float scale, float* scores, float* out) {
  std::vector<float> row(static_cast<size_t>(h.dim));
  attend_head_portable(h, q, scale, scores, row.data(), out);
}
float softmax_exp_avx2(float* scores, int64_t n, float max) {
  float total = 0.0f;
  for (int64_t j = 0; j < n; ++j) total += (scores[j] = std::exp(scores[j] - max));
  return total;
}
template <class Element>
void tokens_one_by_one(const HeadView<Element>& h, int64_t count, const float* q, int64_t q_stride, float scale,
                       float* scores, float* out, int64_t out_stride) {
  HeadView<Element> one = h;
  for (int64_t i = 0; i < count; ++i, ++one.context) {
    attend_head_avx2(one, q + i * q_stride, scale, scores, out + i * out_stride);
  }
}
void attend_tokens_avx2(const HeadView<float>& h, int64_t count, const float* q, int64_t q_stride, float scale,
                        float* scores, float* out, int64_t out_stride) {
  tokens_one_by_one(h, count, q, q_stride, scale, scores, out, out_stride);
}
void attend_tokens_avx2(const HeadView<uint16_t>& h, int64_t count, const float* q, int64_t q_stride, float scale,
                        float* scores, float* out, int64_t out_stride) {
  tokens_one_by_one(h, count, q, q_stride, scale, scores, out, out_stride);
}
}  // namespace tessera::kernels::cpu::detail

#endif
