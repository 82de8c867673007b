// Paged attention on the GPU (KV write, split-K decode, tiled prefill) against the CPU twin on the same random
// cache, with scattered block tables, GQA and MHA, contexts across partition boundaries, f32 and bf16 storage.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention.h"
#include "tests/support/gpu_test_support.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cuda {
namespace {

using testing_support::DeviceBuffer;
using testing_support::nv;

struct Shape {
  int64_t heads, kv_heads, head_dim, block_size;
};

// A host cache and a permutation of its blocks as the sequences' tables.
struct HostCache {
  Shape shape;
  int64_t num_blocks;
  std::vector<float> k, v;
  cpu::KvCacheView view() {
    return {k.data(), v.data(), cpu::KvDtype::kF32, num_blocks, shape.block_size, shape.kv_heads, shape.head_dim};
  }
};

HostCache make_cache(const Shape& shape, int64_t num_blocks, uint32_t seed, bool bf16_exact) {
  const size_t size = static_cast<size_t>(num_blocks * shape.block_size * shape.kv_heads * shape.head_dim);
  HostCache cache{shape, num_blocks, testing_support::random_floats(size, seed, -2.0f, 2.0f),
                  testing_support::random_floats(size, seed + 1)};
  if (bf16_exact) {
    cache.k = testing_support::bf16_exact(cache.k);
    cache.v = testing_support::bf16_exact(cache.v);
  }
  return cache;
}

std::vector<int32_t> shuffled_blocks(int64_t num_blocks, uint32_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
  return ids;
}

template <class T>
DeviceKvCache<T> device_view(DeviceBuffer<T>& k, DeviceBuffer<T>& v, const HostCache& cache) {
  return {k.get(), v.get(), cache.num_blocks, cache.shape.block_size, cache.shape.kv_heads, cache.shape.head_dim};
}

void check_decode(const Shape& shape, bool use_bf16) {
  const std::vector<int64_t> contexts = {1, 17, 255, 256, 257, 700, 1500};
  const int64_t num_seqs = static_cast<int64_t>(contexts.size());
  const int64_t max_context = *std::max_element(contexts.begin(), contexts.end());
  const int64_t max_blocks = (max_context + shape.block_size - 1) / shape.block_size;
  const int64_t num_blocks = num_seqs * max_blocks;
  HostCache cache = make_cache(shape, num_blocks, 11, use_bf16);
  const std::vector<int32_t> tables = shuffled_blocks(num_blocks, 5);  // [num_seqs, max_blocks], scattered
  const int64_t row = shape.heads * shape.head_dim;
  const auto q = testing_support::bf16_exact(testing_support::random_floats(static_cast<size_t>(num_seqs * row), 3));
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));

  std::vector<float> expected(static_cast<size_t>(num_seqs * row));
  for (int64_t s = 0; s < num_seqs; ++s) {
    cpu::attention(cache.view(), tables.data() + s * max_blocks, max_blocks, contexts[s] - 1, 1, q.data() + s * row,
                   row, shape.heads, scale, expected.data() + s * row, row);
  }
  std::vector<int32_t> lens(contexts.begin(), contexts.end());
  DeviceBuffer<int32_t> dtables(tables), dlens(lens);
  AttentionWorkspace workspace;
  std::vector<float> got;
  if (use_bf16) {
    DeviceBuffer<bf16> k(testing_support::to_bf16(cache.k)), v(testing_support::to_bf16(cache.v));
    DeviceBuffer<bf16> dq(testing_support::to_bf16(q)), out(expected.size());
    DeviceKvCache<__nv_bfloat16> view{nv(k.get()), nv(v.get()), num_blocks, shape.block_size, shape.kv_heads,
                                      shape.head_dim};
    paged_attention_decode(view, dtables.get(), max_blocks, dlens.get(), max_context, num_seqs, nv(dq.get()), row,
                           shape.heads, scale, nv(out.get()), row, workspace, nullptr);
    got = testing_support::to_f32(out.download());
  } else {
    DeviceBuffer<float> k(cache.k), v(cache.v), dq(q), out(expected.size());
    paged_attention_decode(device_view(k, v, cache), dtables.get(), max_blocks, dlens.get(), max_context, num_seqs,
                           dq.get(), row, shape.heads, scale, out.get(), row, workspace, nullptr);
    got = out.download();
  }
  const float tolerance = use_bf16 ? 0.01f : 2e-5f;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], expected[i], tolerance * (1.0f + std::fabs(expected[i])))
        << "seq " << i / row << " (context " << contexts[i / row] << ") element " << i % row;
  }
}

TEST(CudaAttention, DecodeGqaF32MatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  check_decode({9, 3, 64, 16}, false);  // SmolLM2's heads
}
TEST(CudaAttention, DecodeMhaOddHeadDimF32MatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  check_decode({4, 4, 80, 7}, false);
}
TEST(CudaAttention, DecodeWideGroupBf16MatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  check_decode({32, 2, 128, 32}, true);
}

void check_prefill(const Shape& shape, int64_t start, int64_t n, bool use_bf16) {
  const int64_t total = start + n;
  const int64_t table_len = (total + shape.block_size - 1) / shape.block_size + 1;
  const int64_t num_blocks = table_len + 3;
  HostCache cache = make_cache(shape, num_blocks, 21, use_bf16);
  std::vector<int32_t> table = shuffled_blocks(num_blocks, 9);
  table.resize(static_cast<size_t>(table_len));
  const int64_t kv_row = shape.kv_heads * shape.head_dim;
  const int64_t row = shape.heads * shape.head_dim;
  // New tokens' K/V written through write_kv on both sides, over the cache's random prefix.
  const auto new_k = testing_support::bf16_exact(testing_support::random_floats(static_cast<size_t>(n * kv_row), 31));
  const auto new_v = testing_support::bf16_exact(testing_support::random_floats(static_cast<size_t>(n * kv_row), 32));
  const auto q = testing_support::bf16_exact(testing_support::random_floats(static_cast<size_t>(n * row), 33));
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  DeviceBuffer<int32_t> dtable(table);
  std::vector<float> got;
  std::vector<float> got_k;
  if (use_bf16) {
    DeviceBuffer<bf16> k(testing_support::to_bf16(cache.k)), v(testing_support::to_bf16(cache.v));
    DeviceBuffer<bf16> dnk(testing_support::to_bf16(new_k)), dnv(testing_support::to_bf16(new_v));
    DeviceBuffer<bf16> dq(testing_support::to_bf16(q)), out(static_cast<size_t>(n * row));
    DeviceKvCache<__nv_bfloat16> view{nv(k.get()), nv(v.get()), num_blocks, shape.block_size, shape.kv_heads,
                                      shape.head_dim};
    write_kv(view, dtable.get(), table_len, start, n, nv(dnk.get()), kv_row, nv(dnv.get()), kv_row, nullptr);
    attention_prefill(view, dtable.get(), table_len, start, n, nv(dq.get()), row, shape.heads, scale, nv(out.get()), row,
                      nullptr);
    got = testing_support::to_f32(out.download());
    got_k = testing_support::to_f32(k.download());
  } else {
    DeviceBuffer<float> k(cache.k), v(cache.v), dnk(new_k), dnv(new_v), dq(q), out(static_cast<size_t>(n * row));
    const DeviceKvCache<float> view = device_view(k, v, cache);
    write_kv(view, dtable.get(), table_len, start, n, dnk.get(), kv_row, dnv.get(), kv_row, nullptr);
    attention_prefill(view, dtable.get(), table_len, start, n, dq.get(), row, shape.heads, scale, out.get(), row, nullptr);
    got = out.download();
    got_k = k.download();
  }
  cpu::write_kv(cache.view(), table.data(), table_len, start, n, new_k.data(), kv_row, new_v.data(), kv_row);
  ASSERT_EQ(got_k, cache.k);  // the same slots written with the same values
  std::vector<float> expected(static_cast<size_t>(n * row));
  cpu::attention(cache.view(), table.data(), table_len, start, n, q.data(), row, shape.heads, scale, expected.data(),
                 row);
  const float tolerance = use_bf16 ? 0.01f : 2e-5f;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], expected[i], tolerance * (1.0f + std::fabs(expected[i])))
        << "token " << i / row << " element " << i % row;
  }
}

TEST(CudaAttention, PrefillFromZeroGqaF32MatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  check_prefill({9, 3, 64, 16}, 0, 37, false);
}
TEST(CudaAttention, ChunkedPrefillAfterCachedPrefixF32MatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  check_prefill({6, 2, 80, 5}, 100, 29, false);
}
TEST(CudaAttention, PrefillBf16MatchesCpu) {
  TESSERA_REQUIRE_GPUS(1);
  check_prefill({8, 1, 128, 16}, 3, 300, true);
}

TEST(CudaAttention, RejectsBadShapes) {
  TESSERA_REQUIRE_GPUS(1);
  DeviceKvCache<float> view{nullptr, nullptr, 4, 16, 3, 64};
  EXPECT_THROW(attention_prefill(view, nullptr, 4, 0, 1, nullptr, 640, 10, 1.0f, nullptr, 640, nullptr), Error);
  view.head_dim = 512;
  AttentionWorkspace workspace;
  EXPECT_THROW(paged_attention_decode(view, nullptr, 4, nullptr, 10, 1, nullptr, 512 * 9, 9, 1.0f, nullptr, 512 * 9,
                                      workspace, nullptr),
               Error);
}

}  // namespace
}  // namespace tessera::kernels::cuda
