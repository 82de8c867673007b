// Vocab-parallel embedding lookup on the GPU against the CPU twin.
#include <gtest/gtest.h>

#include <climits>
#include <vector>

#include "kernels/cpu/embedding.h"
#include "kernels/cuda/embedding.h"
#include "tests/support/gpu_test_support.h"
#include "tests/support/random_data.h"

namespace tessera::kernels::cuda {
namespace {

using testing_support::DeviceBuffer;
using testing_support::nv;

TEST(CudaEmbedding, VocabSlicesSumToTheFullLookup) {
  TESSERA_REQUIRE_GPUS(1);
  const int64_t vocab = 1001, hidden = 67;
  const auto table = testing_support::bf16_exact(testing_support::random_floats(vocab * hidden, 1));
  const std::vector<int32_t> ids = {0, 1000, 499, 500, 3, 999, 500, 17, 250};
  DeviceBuffer<int32_t> dids(ids);
  std::vector<float> sum(ids.size() * hidden, 0.0f);
  for (const auto& [begin, end] : {std::pair<int64_t, int64_t>{0, 500}, {500, 1001}}) {
    std::vector<float> slice(table.begin() + begin * hidden, table.begin() + end * hidden);
    std::vector<float> expected(ids.size() * hidden);
    cpu::embedding_lookup(ids.data(), static_cast<int64_t>(ids.size()), slice.data(), begin, end, vocab, hidden,
                          expected.data());
    DeviceBuffer<float> dslice(slice), out(expected.size());
    embedding_lookup(dids.get(), static_cast<int64_t>(ids.size()), dslice.get(), begin, end, vocab, hidden, out.get(),
                     nullptr);
    const auto got = out.download();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expected[i]) << "slice " << begin << " i=" << i;
    // bf16 table into f32 activations: exact too (the table is bf16-exact).
    DeviceBuffer<bf16> dslice16(testing_support::to_bf16(slice));
    DeviceBuffer<float> out2(expected.size());
    embedding_lookup(dids.get(), static_cast<int64_t>(ids.size()), nv(dslice16.get()), begin, end, vocab, hidden,
                     out2.get(), nullptr);
    const auto got2 = out2.download();
    for (size_t i = 0; i < got2.size(); ++i) ASSERT_EQ(got2[i], expected[i]) << i;
    for (size_t i = 0; i < got.size(); ++i) sum[i] += got[i];
  }
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int64_t h = 0; h < hidden; ++h) ASSERT_EQ(sum[t * hidden + h], table[ids[t] * hidden + h]);
  }
}

TEST(CudaEmbedding, ReportsTheFirstBadIdAndWritesZeros) {
  TESSERA_REQUIRE_GPUS(1);
  const int64_t vocab = 10, hidden = 4;
  DeviceBuffer<float> table(testing_support::random_floats(vocab * hidden, 2));
  DeviceBuffer<int32_t> ids(std::vector<int32_t>{1, 12, 3, -1});
  DeviceBuffer<int32_t> bad(std::vector<int32_t>{INT32_MAX});
  DeviceBuffer<float> out(4 * hidden);
  embedding_lookup(ids.get(), 4, table.get(), 0, vocab, vocab, hidden, out.get(), nullptr, bad.get());
  EXPECT_EQ(bad.download()[0], 1);
  const auto got = out.download();
  for (int64_t h = 0; h < hidden; ++h) {
    EXPECT_EQ(got[1 * hidden + h], 0.0f);
    EXPECT_EQ(got[3 * hidden + h], 0.0f);
  }
  EXPECT_THROW(embedding_lookup(ids.get(), 4, table.get(), 5, 4, vocab, hidden, out.get(), nullptr), Error);
}

}  // namespace
}  // namespace tessera::kernels::cuda
