#pragma once
// Causal grouped-query attention over a paged KV cache on the CPU, computed in f32 over a cache of f32 or f16.
//
// The runtime owns the cache memory; the kernels see one layer of it through KvCacheView. A sequence's tokens
// live in fixed-size blocks: position p of a sequence is slot p % block_size of block block_table[p / block_size].
// Query head h reads KV head h / (heads / kv_heads) (GQA; heads == kv_heads is plain multi-head attention).
// Each head runs in AVX2 code where packed_isa() allows it and head_dim % 8 == 0 (and, for an f16 cache, the CPU
// has F16C), else in portable code (attention_head.h); a head's result depends only on its query and its cache rows.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera::kernels::cpu {

// What a KV cache stores (`--kv-cache-dtype`). f32, the default: K and V as computed, so that attention is as exact
// as the f32 reference. f16 (IEEE binary16): half the bytes, so twice the tokens in the same memory and half the
// bytes a decode step reads from the cache; K and V are rounded to nearest (11 significant bits) when written, and
// attention converts them back to f32 exactly, so its results differ from the f32 cache's by that rounding only.
enum class KvDtype { kF32, kF16 };
std::string_view kv_dtype_name(KvDtype dtype);  // "f32", "f16"
// Parses "f32" or "f16"; throws tessera::Error naming the bad value and the accepted ones.
KvDtype parse_kv_dtype(std::string_view name);
constexpr size_t kv_dtype_bytes(KvDtype dtype) { return dtype == KvDtype::kF16 ? 2 : 4; }

// One layer's K and V caches, each [num_blocks, block_size, kv_heads, head_dim] row-major and contiguous, of
// `dtype` elements (float or uint16_t fp16 bits).
struct KvCacheView {
  void* k = nullptr;
  void* v = nullptr;
  KvDtype dtype = KvDtype::kF32;
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
};

// Stores the keys and values of n new tokens at sequence positions [start, start + n) (rounded to f16 for an f16
// cache).
//   block_table: [table_len] block ids of the sequence, covering at least start + n positions.
//   k, v: [n, kv_heads, head_dim], token rows k_token_stride / v_token_stride floats apart (>= kv_heads *
//         head_dim; a fused QKV buffer passes its full row width).
// Throws tessera::Error when the table is too short, a block id is outside [0, num_blocks), or sizes disagree.
void write_kv(const KvCacheView& cache, const int32_t* block_table, int64_t table_len, int64_t start, int64_t n,
              const float* k, int64_t k_token_stride, const float* v, int64_t v_token_stride);

// For the n query tokens at positions start .. start + n - 1 (their K/V already written), token t attends to
// positions [0, start + t]:  out = softmax(q · kᵀ * scale) · v, per query head.
//   block_table: [table_len] as for write_kv, covering start + n positions.
//   q:   [n, heads, head_dim], token rows q_token_stride floats apart (>= heads * head_dim).
//   out: [n, heads, head_dim], token rows out_token_stride floats apart; must not overlap q or the cache.
// scale is usually 1 / sqrt(head_dim). Prefill is n > 1 (start 0, or > 0 for a chunked prefill or a prefix
// already cached); decode is n == 1. Throws tessera::Error as write_kv, and when heads is not a multiple of
// kv_heads.
void attention(const KvCacheView& cache, const int32_t* block_table, int64_t table_len, int64_t start, int64_t n,
               const float* q, int64_t q_token_stride, int64_t heads, float scale, float* out,
               int64_t out_token_stride);

// As attention(), for the query heads [head_begin, head_end) of the `heads` only (out's other heads are left as
// they are): a caller spreads one sequence's heads over threads this way (a decode step of one sequence has nothing
// else to spread). Each head's result is the same whichever range computes it.
void attention_heads(const KvCacheView& cache, const int32_t* block_table, int64_t table_len, int64_t start, int64_t n,
                     const float* q, int64_t q_token_stride, int64_t heads, int64_t head_begin, int64_t head_end,
                     float scale, float* out, int64_t out_token_stride);

}  // namespace tessera::kernels::cpu
