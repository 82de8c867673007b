#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/base/half.h"
#include "kernels/cpu/attention_head.h"
#include "kernels/cpu/block_gemv.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/cpu/vector_ops.h"

namespace tessera::kernels::cpu {

std::string_view kv_dtype_name(KvDtype dtype) { return dtype == KvDtype::kF16 ? "f16" : "f32"; }

KvDtype parse_kv_dtype(std::string_view name) {
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16}) {
    if (name == kv_dtype_name(dtype)) return dtype;
  }
  fail("unknown KV cache dtype '", name, "' (expected f32 or f16)");
}

namespace {

// Checks the cache view, the range [start, start + n) and every block id that range needs.
void check_common(const char* op, const KvCacheView& cache, const int32_t* block_table, int64_t table_len,
                  int64_t start, int64_t n) {
  TESSERA_CHECK(cache.k != nullptr && cache.v != nullptr, op, ": null K or V cache");
  TESSERA_CHECK(cache.num_blocks > 0 && cache.block_size > 0 && cache.kv_heads > 0 && cache.head_dim > 0, op,
                ": bad cache shape [", cache.num_blocks, ", ", cache.block_size, ", ", cache.kv_heads, ", ",
                cache.head_dim, "]");
  TESSERA_CHECK(start >= 0 && n >= 0 && table_len >= 0, op, ": negative start ", start, ", n ", n, " or table length ",
                table_len);
  const int64_t blocks_needed = (start + n + cache.block_size - 1) / cache.block_size;
  TESSERA_CHECK(blocks_needed <= table_len, op, ": positions [0, ", start + n, ") need ", blocks_needed, " blocks of ",
                cache.block_size, " but the block table has ", table_len);
  TESSERA_CHECK(blocks_needed == 0 || block_table != nullptr, op, ": null block table");
  for (int64_t b = 0; b < blocks_needed; ++b) {
    TESSERA_CHECK(block_table[b] >= 0 && block_table[b] < cache.num_blocks, op, ": block table entry ", b, " is block ",
                  block_table[b], ", outside the cache's [0, ", cache.num_blocks, ")");
  }
}

}  // namespace

void write_kv(const KvCacheView& cache, const int32_t* block_table, int64_t table_len, int64_t start, int64_t n,
              const float* k, int64_t k_token_stride, const float* v, int64_t v_token_stride) {
  check_common("write_kv", cache, block_table, table_len, start, n);
  const int64_t row = cache.kv_heads * cache.head_dim;
  TESSERA_CHECK(n == 0 || (k != nullptr && v != nullptr), "write_kv: null k or v input");
  TESSERA_CHECK(k_token_stride >= row && v_token_stride >= row, "write_kv: token strides ", k_token_stride, " / ",
                v_token_stride, " are smaller than kv_heads * head_dim = ", row);
  for (int64_t t = 0; t < n; ++t) {
    // The kv heads of one position are contiguous in the cache, so each token is one copy (or conversion) per tensor.
    const int64_t offset =
        detail::cache_row_offset(block_table, cache.block_size, cache.kv_heads, cache.head_dim, start + t, 0);
    const float* k_row = k + t * k_token_stride;
    const float* v_row = v + t * v_token_stride;
    if (cache.dtype == KvDtype::kF16) {
      auto* k_out = static_cast<uint16_t*>(cache.k) + offset;
      auto* v_out = static_cast<uint16_t*>(cache.v) + offset;
      for (int64_t i = 0; i < row; ++i) {
        k_out[i] = float_to_fp16(k_row[i]).bits;
        v_out[i] = float_to_fp16(v_row[i]).bits;
      }
    } else {
      std::copy(k_row, k_row + row, static_cast<float*>(cache.k) + offset);
      std::copy(v_row, v_row + row, static_cast<float*>(cache.v) + offset);
    }
  }
}

namespace detail {

namespace {

// A cache row as f32: the row itself, or (f16) its exact widening into `buffer`.
inline const float* row_f32(const float* row, int64_t, float*) { return row; }
inline const float* row_f32(const uint16_t* row, int64_t dim, float* buffer) {
  for (int64_t d = 0; d < dim; ++d) buffer[d] = fp16_to_float(fp16{row[d]});
  return buffer;
}

// Two passes: scores, then the weighted sum of values.
template <class Element>
void attend_portable(const HeadView<Element>& h, const float* q, float scale, float* scores, float* row, float* out) {
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t first = 0; first < h.context; first += h.block_size) {
    const Element* k = h.k + h.slot_offset(first);
    const int64_t count = std::min(h.block_size, h.context - first);
    for (int64_t s = 0; s < count; ++s) {
      const float score = dot(q, row_f32(k + s * h.row_stride, h.dim, row), h.dim) * scale;
      scores[first + s] = score;
      max_score = std::max(max_score, score);
    }
  }
  // Numerically stable softmax: exp(score - max) is at most 1 and the largest term is exactly 1.
  float total = 0.0f;
  for (int64_t j = 0; j < h.context; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    total += scores[j];
  }
  std::fill(out, out + h.dim, 0.0f);
  for (int64_t first = 0; first < h.context; first += h.block_size) {
    const Element* v = h.v + h.slot_offset(first);
    const int64_t count = std::min(h.block_size, h.context - first);
    for (int64_t s = 0; s < count; ++s) axpy(scores[first + s], row_f32(v + s * h.row_stride, h.dim, row), out, h.dim);
  }
  const float inv_total = 1.0f / total;
  for (int64_t d = 0; d < h.dim; ++d) out[d] *= inv_total;
}

}  // namespace

void attend_head_portable(const HeadView<float>& h, const float* q, float scale, float* scores, float* out) {
  attend_portable(h, q, scale, scores, nullptr, out);
}

void attend_head_portable(const HeadView<uint16_t>& h, const float* q, float scale, float* scores, float* row,
                          float* out) {
  attend_portable(h, q, scale, scores, row, out);
}

}  // namespace detail

void attention(const KvCacheView& cache, const int32_t* block_table, int64_t table_len, int64_t start, int64_t n,
               const float* q, int64_t q_token_stride, int64_t heads, float scale, float* out,
               int64_t out_token_stride) {
  attention_heads(cache, block_table, table_len, start, n, q, q_token_stride, heads, 0, heads, scale, out,
                  out_token_stride);
}

void attention_heads(const KvCacheView& cache, const int32_t* block_table, int64_t table_len, int64_t start, int64_t n,
                     const float* q, int64_t q_token_stride, int64_t heads, int64_t head_begin, int64_t head_end,
                     float scale, float* out, int64_t out_token_stride) {
  check_common("attention", cache, block_table, table_len, start, n);
  TESSERA_CHECK(heads > 0 && heads % cache.kv_heads == 0, "attention: ", heads,
                " query heads are not a positive multiple of ", cache.kv_heads, " kv heads");
  TESSERA_CHECK(0 <= head_begin && head_begin <= head_end && head_end <= heads, "attention: head range [", head_begin,
                ", ", head_end, ") is not within the ", heads, " query heads");
  const int64_t width = heads * cache.head_dim;
  TESSERA_CHECK(q_token_stride >= width && out_token_stride >= width, "attention: token strides ", q_token_stride,
                " (q) / ", out_token_stride, " (out) are smaller than heads * head_dim = ", width);
  TESSERA_CHECK(n == 0 || (q != nullptr && out != nullptr), "attention: null q or out");
  const int64_t group = heads / cache.kv_heads;
  thread_local std::vector<float> scores;  // per thread: callers run head ranges on the kernel threads
  const auto scores_needed = static_cast<size_t>(detail::kQueryTile * (start + n));
  if (scores.size() < scores_needed) scores.resize(scores_needed);
  const bool avx2 = packed_isa() >= PackedIsa::kAvx2 && cache.head_dim % 8 == 0 &&
                    (cache.dtype == KvDtype::kF32 || packed::cpu_has_f16c());
  // The tokens in tiles of up to kQueryTile (a decode token is a tile of one; the AVX2 build passes over the cached
  // rows once per tile), each tile for every head of the range. A token's result is the same whatever its tile.
  const auto run = [&](auto view, auto&& attend_tokens) {
    view.block_table = block_table;
    view.block_size = cache.block_size;
    view.kv_heads = cache.kv_heads;
    view.dim = cache.head_dim;
    view.row_stride = cache.kv_heads * cache.head_dim;
    for (int64_t t = 0; t < n; t += detail::kQueryTile) {
      view.context = start + t + 1;  // causal: the token sees itself and everything before it
      const int64_t tile = std::min(detail::kQueryTile, n - t);
      for (int64_t h = head_begin; h < head_end; ++h) {
        view.kv_head = h / group;
        attend_tokens(view, tile, q + t * q_token_stride + h * cache.head_dim,
                      out + t * out_token_stride + h * cache.head_dim);
      }
    }
  };
  // The portable build: token by token.
  const auto one_by_one = [&](auto view, int64_t tile, const float* qh, float* oh, auto&& attend_head) {
    for (int64_t i = 0; i < tile; ++i, ++view.context) attend_head(view, qh + i * q_token_stride, oh + i * out_token_stride);
  };
  if (cache.dtype == KvDtype::kF16) {
    detail::HeadView<uint16_t> view;
    view.k = static_cast<const uint16_t*>(cache.k);
    view.v = static_cast<const uint16_t*>(cache.v);
    thread_local std::vector<float> row;  // the portable build's widened row
    if (row.size() < static_cast<size_t>(cache.head_dim)) row.resize(static_cast<size_t>(cache.head_dim));
    run(view, [&](const detail::HeadView<uint16_t>& v, int64_t tile, const float* qh, float* oh) {
      if (avx2) {
        detail::attend_tokens_avx2(v, tile, qh, q_token_stride, scale, scores.data(), oh, out_token_stride);
      } else {
        one_by_one(v, tile, qh, oh, [&](const detail::HeadView<uint16_t>& one, const float* qi, float* oi) {
          detail::attend_head_portable(one, qi, scale, scores.data(), row.data(), oi);
        });
      }
    });
  } else {
    detail::HeadView<float> view;
    view.k = static_cast<const float*>(cache.k);
    view.v = static_cast<const float*>(cache.v);
    run(view, [&](const detail::HeadView<float>& v, int64_t tile, const float* qh, float* oh) {
      if (avx2) {
        detail::attend_tokens_avx2(v, tile, qh, q_token_stride, scale, scores.data(), oh, out_token_stride);
      } else {
        one_by_one(v, tile, qh, oh, [&](const detail::HeadView<float>& one, const float* qi, float* oi) {
          detail::attend_head_portable(one, qi, scale, scores.data(), oi);
        });
      }
    });
  }
}

}  // namespace tessera::kernels::cpu
