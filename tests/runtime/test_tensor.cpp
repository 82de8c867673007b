#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "runtime/core/tensor.h"

namespace tessera {
namespace {

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64, DType::U8}) {
    EXPECT_EQ(parse_dtype(dtype_name(d)), d);
  }
  EXPECT_THROW(parse_dtype("f8"), Error);
}

TEST(Shape, RankNumelAndNegativeAxes) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s[-1], 4);
  EXPECT_EQ(s[0], 2);
  EXPECT_THROW(s[3], Error);
  EXPECT_EQ(s.to_string(), "[2, 3, 4]");
  EXPECT_EQ(Shape{}.numel(), 1);
  EXPECT_EQ((Shape{5, 0}).numel(), 0);
  EXPECT_TRUE((Shape{2, 3} == Shape{2, 3}));
  EXPECT_FALSE((Shape{2, 3} == Shape{3, 2}));
}

TEST(Shape, RejectsBadShapes) {
  EXPECT_THROW((Shape{1, 2, 3, 4, 5}), Error);
  EXPECT_THROW((Shape{2, -1}), Error);
  const int64_t big = std::numeric_limits<int64_t>::max() / 2;
  EXPECT_THROW((Shape{big, 4}).numel(), Error);
}

TEST(Tensor, ZeroFilledAlignedTypedAccess) {
  Tensor t(DType::F32, {3, 5});
  EXPECT_EQ(t.numel(), 15);
  EXPECT_EQ(t.nbytes(), 60u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
  for (float v : t.span<float>()) EXPECT_EQ(v, 0.0f);
  t.data<float>()[7] = 2.5f;
  t.reshape({15});
  EXPECT_EQ(t.span<float>()[7], 2.5f);
  EXPECT_THROW(t.data<int32_t>(), Error);
  EXPECT_THROW(t.reshape({4, 4}), Error);
}

TEST(Tensor, ResizeKeepsTheAllocationWhileTheBytesFit) {
  Tensor t;
  t.resize(DType::F32, {4, 8});
  ASSERT_FALSE(t.empty());
  for (float v : t.span<float>()) EXPECT_EQ(v, 0.0f);  // a fresh allocation is zero-filled
  void* first = t.raw();
  t.data<float>()[3] = 1.5f;
  t.resize(DType::F32, {2, 8});  // smaller: same memory, stale contents
  EXPECT_EQ(t.raw(), first);
  EXPECT_EQ(t.shape(), (Shape{2, 8}));
  EXPECT_EQ(t.nbytes(), 64u);
  EXPECT_EQ(t.data<float>()[3], 1.5f);
  t.resize(DType::I32, {4, 8});  // back to the full size, another 4-byte type: still fits
  EXPECT_EQ(t.raw(), first);
  EXPECT_EQ(t.numel(), 32);
  t.resize(DType::F32, {5, 8});  // larger: a new zero-filled allocation
  EXPECT_EQ(t.numel(), 40);
  for (float v : t.span<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
}

}  // namespace
}  // namespace tessera
