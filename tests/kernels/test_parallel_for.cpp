// parallel_for: every index exactly once, for pool sizes 1..4, ranges shorter than the pool, nested calls, errors.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/parallel_for.h"

namespace tessera::kernels::cpu {
namespace {

TEST(ParallelFor, CoversEveryIndexOnce) {
  for (int threads = 1; threads <= 4; ++threads) {
    set_kernel_threads(threads);
    EXPECT_EQ(kernel_threads(), threads);
    for (const int64_t n : {int64_t{1}, int64_t{3}, int64_t{1000}, int64_t{4099}}) {
      for (int repeat = 0; repeat < 50; ++repeat) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        parallel_for(n, 1, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " n " << n;
      }
    }
  }
}

TEST(ParallelFor, MinChunkLimitsTheSplit) {
  set_kernel_threads(4);
  std::atomic<int> chunks{0};
  parallel_for(100, 60, [&](int64_t, int64_t) { chunks.fetch_add(1); });
  EXPECT_EQ(chunks.load(), 2);
  chunks = 0;
  parallel_for(0, 1, [&](int64_t, int64_t) { chunks.fetch_add(1); });
  EXPECT_EQ(chunks.load(), 0);
}

TEST(ParallelFor, NestedCallsRunInline) {
  set_kernel_threads(2);
  std::atomic<int64_t> total{0};
  parallel_for(10, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      parallel_for(10, 1, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
    }
  });
  EXPECT_EQ(total.load(), 100);
}

TEST(ParallelFor, RethrowsAChunksError) {
  set_kernel_threads(3);
  EXPECT_THROW(parallel_for(30, 1,
                            [&](int64_t begin, int64_t) {
                              if (begin > 0) throw std::runtime_error("chunk failed");
                            }),
               std::runtime_error);
  std::atomic<int64_t> total{0};  // the pool still works afterwards
  parallel_for(30, 1, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
  EXPECT_EQ(total.load(), 30);
  EXPECT_THROW(set_kernel_threads(0), Error);
}

}  // namespace
}  // namespace tessera::kernels::cpu
