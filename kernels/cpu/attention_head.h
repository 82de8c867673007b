#pragma once
// One query head of one token attending over its cached positions (internal to attention.cpp: not a kernel
// interface). Two builds: portable code, and AVX2+FMA (attention_head_avx2.cpp), chosen by attention.cpp from the
// process's packed-kernel ISA (packed_isa(): cpuid, or TESSERA_CPU_ISA). Each build's arithmetic for a head depends on
// nothing but that head's query and cache rows (not on the batch, the other heads or the thread), so attention stays
// batch invariant; the builds differ from each other in their summation order and their exp (std::exp in the portable
// build, an 8-lane polynomial within 2 ulp in the AVX2 one).
// Both read an f32 or an f16 cache (KvDtype). An f16 row is widened to f32 exactly and then takes the same operations
// as an f32 row: an f16 cache gives the very bits of an f32 cache that holds the same (f16-representable) values.
#include <cstdint>

namespace tessera::kernels::cpu::detail {

// Offset of (position, KV head) in a layer's K or V cache, [num_blocks, block_size, kv_heads, dim], through the
// sequence's block table: position p is slot p % block_size of block block_table[p / block_size].
inline int64_t cache_row_offset(const int32_t* block_table, int64_t block_size, int64_t kv_heads, int64_t dim,
                                int64_t position, int64_t kv_head) {
  const int64_t slot = block_table[position / block_size] * block_size + position % block_size;
  return (slot * kv_heads + kv_head) * dim;
}

// The cache rows one query head reads: KV head `kv_head` of positions [0, context) through the block table.
// Element: float (an f32 cache) or uint16_t (an f16 cache: IEEE binary16 bits).
template <class Element>
struct HeadView {
  const Element* k = nullptr;  // the layer's caches, [num_blocks, block_size, kv_heads, dim]
  const Element* v = nullptr;
  const int32_t* block_table = nullptr;
  int64_t block_size = 0, kv_heads = 0, dim = 0, kv_head = 0, context = 0;
  int64_t row_stride = 0;  // elements between consecutive slots of one block: kv_heads * dim

  // Offset of position `position`'s row (this head's KV head) in k / v; positions of one block are row_stride apart.
  int64_t slot_offset(int64_t position) const {
    return cache_row_offset(block_table, block_size, kv_heads, dim, position, kv_head);
  }
};

// out[0, dim) = softmax(q . k * scale) . v over the view's positions; scores: >= context floats of scratch, and
// (f16 only) row: >= dim floats of scratch for the widened row.
void attend_head_portable(const HeadView<float>& head, const float* q, float scale, float* scores, float* out);
void attend_head_portable(const HeadView<uint16_t>& head, const float* q, float scale, float* scores, float* row,
                          float* out);
// The same with AVX2+FMA; requires a CPU with both (and F16C for the f16 cache) and dim % 8 == 0.
void attend_head_avx2(const HeadView<float>& head, const float* q, float scale, float* scores, float* out);
void attend_head_avx2(const HeadView<uint16_t>& head, const float* q, float scale, float* scores, float* out);

// The AVX2 build's softmax numerator in place: scores[j] = e^(scores[j] - max) for j < n, returning their sum (what
// both attend functions use; exposed for its accuracy test). Requires AVX2+FMA.
float softmax_exp_avx2(float* scores, int64_t n, float max);

// The most query tokens one attend_tokens_avx2 call takes (attention.cpp runs a prefill chunk in tiles of this many).
inline constexpr int64_t kQueryTile = 4;
// `count` (1 to kQueryTile) consecutive query tokens of one head, as many calls of attend_head_avx2 would compute
// them, bit for bit: token i's query at q + i * q_stride, its output at out + i * out_stride, its context
// head.context + i. scores: >= count * (head.context + count - 1) floats of scratch. Same requirements as
// attend_head_avx2; one pass over the cached rows serves all the tokens.
void attend_tokens_avx2(const HeadView<float>& head, int64_t count, const float* q, int64_t q_stride, float scale,
                        float* scores, float* out, int64_t out_stride);
void attend_tokens_avx2(const HeadView<uint16_t>& head, int64_t count, const float* q, int64_t q_stride, float scale,
                        float* scores, float* out, int64_t out_stride);

}  // namespace tessera::kernels::cpu::detail
