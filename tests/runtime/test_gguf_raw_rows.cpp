// GgufWeightSource::read_rows_raw / read_columns_raw on the real SmolLM2 GGUF: the stored blocks of a slice,
// decoded with dequantize(), must be exactly what read_rows / read_columns return for the same slice, including
// the Q/K rows that the source un-permutes; column slices that cut a block, and vectors, have no raw form.
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <vector>

#include "kernels/base/error.h"
#include "kernels/cpu/dequant.h"
#include "runtime/model/model_source.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

namespace k = kernels::cpu;

class GgufRawRows : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::filesystem::path model = testing::default_model_path();
    TESSERA_REQUIRE_MODEL(model);
    source_ = open_model_source(model);
  }

  static std::vector<float> decoded(const k::QuantizedRows& q) {
    std::vector<float> out(static_cast<size_t>(q.rows * q.cols));
    k::dequantize(q.format, q.bytes, q.rows * q.cols, out.data());
    return out;
  }

  const WeightSource& weights() const { return *source_.weights; }

  ModelSource source_;
};

TEST_F(GgufRawRows, RowsDecodeToTheDequantizedRowsInHuggingFaceOrder) {
  const int64_t hidden = source_.config.hidden_size;
  // attn_q and attn_k are stored permuted (llama.cpp's RoPE layout); attn_v and ffn_up are not; the embedding is Q8_0.
  for (const WeightId id : {WeightId{WeightKind::kAttnQ, 3}, WeightId{WeightKind::kAttnK, 0},
                            WeightId{WeightKind::kAttnV, 29}, WeightId{WeightKind::kFfnUp, 7},
                            WeightId{WeightKind::kTokenEmbedding}}) {
    SCOPED_TRACE(to_string(id));
    const int64_t begin = 37, end = 131;  // rows of three heads, cut inside the first and the last
    const std::optional<k::QuantizedRows> raw = weights().read_rows_raw(id, begin, end);
    ASSERT_TRUE(raw.has_value());
    EXPECT_EQ(raw->rows, end - begin);
    EXPECT_EQ(raw->cols, hidden);
    EXPECT_EQ(std::string(k::quant_format_name(raw->format)), weights().info(id).storage_type);
    ASSERT_EQ(static_cast<int64_t>(raw->bytes.size()), raw->rows * raw->row_bytes());
    std::vector<float> want(static_cast<size_t>((end - begin) * hidden));
    weights().read_rows(id, begin, end, want.data());
    EXPECT_EQ(decoded(*raw), want);
  }
  EXPECT_FALSE(weights().read_rows_raw({WeightKind::kAttnNorm, 0}, 0, 8).has_value());  // a vector
  EXPECT_THROW(weights().read_rows_raw({WeightKind::kAttnQ, 0}, 10, hidden + 1), Error);
}

TEST_F(GgufRawRows, ColumnSlicesOnBlockBoundariesOnly) {
  const WeightId down{WeightKind::kFfnDown, 12};
  const int64_t rows = source_.config.hidden_size;
  for (const auto& [begin, end] : std::vector<std::pair<int64_t, int64_t>>{{512, 1024}, {0, 32}, {1504, 1536}}) {
    const std::optional<k::QuantizedRows> raw = weights().read_columns_raw(down, begin, end);
    ASSERT_TRUE(raw.has_value()) << begin << ".." << end;
    EXPECT_EQ(raw->rows, rows);
    EXPECT_EQ(raw->cols, end - begin);
    std::vector<float> want(static_cast<size_t>(rows * (end - begin)));
    weights().read_columns(down, begin, end, want.data());
    EXPECT_EQ(decoded(*raw), want) << begin << ".." << end;
  }
  EXPECT_FALSE(weights().read_columns_raw(down, 16, 512).has_value());   // starts inside a block of 32
  EXPECT_FALSE(weights().read_columns_raw(down, 512, 1000).has_value());  // ends inside one
  // A permuted matrix's columns come back in Hugging Face row order too.
  const WeightId q{WeightKind::kAttnQ, 5};
  const std::optional<k::QuantizedRows> raw_q = weights().read_columns_raw(q, 64, 128);
  ASSERT_TRUE(raw_q.has_value());
  std::vector<float> want_q(static_cast<size_t>(raw_q->rows * 64));
  weights().read_columns(q, 64, 128, want_q.data());
  EXPECT_EQ(decoded(*raw_q), want_q);
}

}  // namespace
}  // namespace tessera::runtime
