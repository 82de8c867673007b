#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>
#include <set>

#include "kernels/base/error.h"
#include "runtime/model/gguf_weight_source.h"
#include "runtime/model/model_config_gguf.h"
#include "tests/runtime/gguf_image_builder.h"
#include "tests/support/test_paths.h"

namespace tessera::runtime {
namespace {

using testing::GgufImageBuilder;

// llama.cpp's convert_hf_to_gguf.py LlamaModel.permute, written out with indices:
//   w.reshape(n_head, 2, head_dim // 2, *rest).swapaxes(1, 2).reshape(w.shape)
// Output row (h, i, j) of the (n_head, head_dim // 2, 2) view is input row (h, j, i) of the
// (n_head, 2, head_dim // 2) view.
std::vector<float> converter_permute(const std::vector<float>& w, int64_t n_head, int64_t rows, int64_t cols) {
  const int64_t head_dim = rows / n_head, half = head_dim / 2;
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t dst = h * head_dim + i * 2 + j;
        const int64_t src = h * head_dim + j * half + i;
        std::copy_n(w.begin() + src * cols, cols, out.begin() + dst * cols);
      }
    }
  }
  return out;
}

// A distinct value for every (tensor, row, column): errors in row mapping cannot cancel out.
std::vector<float> pattern(int64_t rows, int64_t cols, float tag) {
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] = tag * 1000.0f + static_cast<float>(r * cols + c);
  }
  return w;
}

struct TinyModel {
  static constexpr int kHidden = 12, kHeads = 3, kKvHeads = 1, kHeadDim = 4, kFfn = 8, kVocab = 5, kLayers = 2;
  std::vector<std::byte> image;
};

// Writes a tiny model the way llama.cpp's converter does: HF weights `pattern(...)`, Q/K (and their biases)
// permuted for llama, untouched for qwen2.
std::vector<std::byte> build_tiny(const std::string& arch, bool tied, bool bias) {
  using M = TinyModel;
  GgufImageBuilder b;
  b.add_string("general.architecture", arch);
  b.add_u32(arch + ".block_count", M::kLayers);
  b.add_u32(arch + ".embedding_length", M::kHidden);
  b.add_u32(arch + ".attention.head_count", M::kHeads);
  b.add_u32(arch + ".attention.head_count_kv", M::kKvHeads);
  b.add_u32(arch + ".feed_forward_length", M::kFfn);
  b.add_u32(arch + ".context_length", 64);
  b.add_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-6f);
  b.add_string("tokenizer.ggml.model", "gpt2");
  b.add_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "ab", "<eos>"});
  b.add_string_array("tokenizer.ggml.merges", {"a b"});
  b.add_u32("tokenizer.ggml.eos_token_id", 4);
  const bool permute = arch == "llama";
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, float tag, int64_t permute_heads) {
    auto w = pattern(rows, cols, tag);
    if (permute && permute_heads > 0) w = converter_permute(w, permute_heads, rows, cols);
    b.add_tensor(name, {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)}, 0, testing::as_bytes_vector(w));
  };
  auto vector = [&](const std::string& name, int64_t n, float tag, int64_t permute_heads) {
    auto w = pattern(n, 1, tag);
    if (permute && permute_heads > 0) w = converter_permute(w, permute_heads, n, 1);
    b.add_tensor(name, {static_cast<uint64_t>(n)}, 0, testing::as_bytes_vector(w));
  };
  matrix("token_embd.weight", M::kVocab, M::kHidden, 1, 0);
  for (int l = 0; l < M::kLayers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const float t = 10.0f * static_cast<float>(l + 1);
    vector(p + "attn_norm.weight", M::kHidden, t + 1, 0);
    matrix(p + "attn_q.weight", M::kHeads * M::kHeadDim, M::kHidden, t + 2, M::kHeads);
    matrix(p + "attn_k.weight", M::kKvHeads * M::kHeadDim, M::kHidden, t + 3, M::kKvHeads);
    matrix(p + "attn_v.weight", M::kKvHeads * M::kHeadDim, M::kHidden, t + 4, 0);
    if (bias) {
      vector(p + "attn_q.bias", M::kHeads * M::kHeadDim, t + 5, M::kHeads);
      vector(p + "attn_k.bias", M::kKvHeads * M::kHeadDim, t + 6, M::kKvHeads);
      vector(p + "attn_v.bias", M::kKvHeads * M::kHeadDim, t + 7, 0);
    }
    matrix(p + "attn_output.weight", M::kHidden, M::kHeads * M::kHeadDim, t + 8, 0);
    vector(p + "ffn_norm.weight", M::kHidden, t + 9, 0);
    matrix(p + "ffn_gate.weight", M::kFfn, M::kHidden, t + 10, 0);
    matrix(p + "ffn_up.weight", M::kFfn, M::kHidden, t + 11, 0);
    matrix(p + "ffn_down.weight", M::kHidden, M::kFfn, t + 12, 0);
  }
  vector("output_norm.weight", M::kHidden, 2, 0);
  if (!tied) matrix("output.weight", M::kVocab, M::kHidden, 3, 0);
  return b.build();
}

TEST(GgufPermutation, IsABijectionWithinHeads) {
  for (int64_t head_dim : {2, 4, 64, 128}) {
    std::set<int64_t> seen;
    for (int64_t r = 0; r < 3 * head_dim; ++r) {
      const int64_t g = gguf_permuted_row(r, head_dim);
      EXPECT_EQ(g / head_dim, r / head_dim);
      seen.insert(g);
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(3 * head_dim));
  }
  // head_dim 4: HF rows (x0, x1 | y0, y1) are stored as (x0, y0, x1, y1).
  EXPECT_EQ(gguf_permuted_row(0, 4), 0);
  EXPECT_EQ(gguf_permuted_row(1, 4), 2);
  EXPECT_EQ(gguf_permuted_row(2, 4), 1);
  EXPECT_EQ(gguf_permuted_row(3, 4), 3);
}

// Round trip: HF weights -> converter permutation -> GGUF -> GgufWeightSource gives the HF weights back,
// for whole tensors, row ranges that start and end inside heads, column ranges, and biases.
TEST(GgufWeightSource, UndoesLlamaQkPermutation) {
  using M = TinyModel;
  for (const std::string arch : {"llama", "qwen2"}) {
    SCOPED_TRACE(arch);
    const auto image = build_tiny(arch, /*tied=*/false, /*bias=*/true);
    const auto file = GgufFile::parse(image, "tiny-" + arch + ".gguf");
    const ModelConfig config = model_config_from_gguf(*file);
    EXPECT_EQ(config.attention_qkv_bias, true);
    GgufWeightSource source(file, config);
    for (int layer = 0; layer < M::kLayers; ++layer) {
      const float t = 10.0f * static_cast<float>(layer + 1);
      struct Case { WeightKind kind; int64_t rows; int64_t cols; float tag; };
      for (const Case& c : {Case{WeightKind::kAttnQ, M::kHeads * M::kHeadDim, M::kHidden, t + 2},
                            Case{WeightKind::kAttnK, M::kKvHeads * M::kHeadDim, M::kHidden, t + 3},
                            Case{WeightKind::kAttnV, M::kKvHeads * M::kHeadDim, M::kHidden, t + 4},
                            Case{WeightKind::kAttnQBias, M::kHeads * M::kHeadDim, 1, t + 5},
                            Case{WeightKind::kAttnKBias, M::kKvHeads * M::kHeadDim, 1, t + 6},
                            Case{WeightKind::kFfnDown, M::kHidden, M::kFfn, t + 12}}) {
        const WeightId id{c.kind, layer};
        SCOPED_TRACE(to_string(id));
        const auto hf = pattern(c.rows, c.cols, c.tag);
        std::vector<float> got(hf.size());
        source.read_rows(id, 0, c.rows, got.data());
        EXPECT_EQ(got, hf);
        // Rows [1, rows - 1): starts and ends inside a head.
        std::vector<float> part(static_cast<size_t>((c.rows - 2) * c.cols));
        source.read_rows(id, 1, c.rows - 1, part.data());
        EXPECT_TRUE(std::equal(part.begin(), part.end(), hf.begin() + c.cols));
        if (c.cols > 1) {
          const int64_t c0 = 3, c1 = c.cols - 2, w = c1 - c0;
          std::vector<float> cols(static_cast<size_t>(c.rows * w));
          source.read_columns(id, c0, c1, cols.data());
          for (int64_t r = 0; r < c.rows; ++r) {
            for (int64_t k = 0; k < w; ++k) ASSERT_EQ(cols[r * w + k], hf[r * c.cols + c0 + k]);
          }
        }
      }
    }
  }
}

TEST(GgufWeightSource, NamesShapesAndTiedEmbeddings) {
  const auto image = build_tiny("llama", /*tied=*/true, /*bias=*/false);
  const auto file = GgufFile::parse(image, "tiny.gguf");
  const ModelConfig config = model_config_from_gguf(*file);
  EXPECT_TRUE(config.tie_word_embeddings);
  EXPECT_FALSE(config.attention_qkv_bias);
  GgufWeightSource source(file, config);
  EXPECT_EQ(source.describe(), "tiny.gguf");
  EXPECT_FALSE(source.has({WeightKind::kLmHead}));
  EXPECT_FALSE(source.has({WeightKind::kAttnQBias, 0}));
  EXPECT_FALSE(source.has({WeightKind::kAttnQ, 2}));  // only 2 layers
  EXPECT_FALSE(source.has({WeightKind::kAttnQ}));     // a layer weight needs a layer
  EXPECT_TRUE(source.has({WeightKind::kAttnQ, 1}));
  const WeightInfo q = source.info({WeightKind::kAttnQ, 1});
  EXPECT_EQ(q.shape, (std::vector<int64_t>{12, 12}));
  EXPECT_EQ(q.storage_type, "F32");
  EXPECT_EQ(q.stored_bytes, 12u * 12 * 4);
  EXPECT_EQ(source.info({WeightKind::kFfnDown, 0}).shape, (std::vector<int64_t>{12, 8}));
  EXPECT_EQ(source.info({WeightKind::kOutputNorm}).shape, (std::vector<int64_t>{12}));
  std::vector<float> norm(4);
  source.read_rows({WeightKind::kOutputNorm}, 2, 6, norm.data());
  EXPECT_EQ(norm, (std::vector<float>{2002, 2003, 2004, 2005}));
  EXPECT_THROW(source.read_rows({WeightKind::kAttnQ, 0}, 5, 13, norm.data()), Error);
  EXPECT_THROW(source.read_columns({WeightKind::kOutputNorm}, 0, 1, norm.data()), Error);
  try {
    source.info({WeightKind::kLmHead});
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("output.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tiny.gguf"), std::string::npos) << e.what();
  }
  EXPECT_EQ(to_string(WeightId{WeightKind::kAttnQ, 3}), "layer 3 attn_q");
  EXPECT_EQ(to_string(WeightId{WeightKind::kTokenEmbedding}), "token_embedding");
  EXPECT_EQ(gguf_tensor_name({WeightKind::kFfnGate, 7}), "blk.7.ffn_gate.weight");
  EXPECT_EQ(gguf_tensor_name({WeightKind::kAttnVBias, 0}), "blk.0.attn_v.bias");
}

TEST(GgufWeightSource, RejectsFilesThatDisagreeWithTheConfig) {
  const auto image = build_tiny("llama", /*tied=*/true, /*bias=*/false);
  const auto file = GgufFile::parse(image, "tiny.gguf");
  ModelConfig config = model_config_from_gguf(*file);
  ModelConfig wider = config;
  wider.intermediate_size = 16;
  try {
    GgufWeightSource source(file, wider);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_gate.weight"), std::string::npos) << e.what();
  }
  ModelConfig untied = config;
  untied.tie_word_embeddings = false;
  EXPECT_THROW(GgufWeightSource(file, untied), Error);  // output.weight missing
  ModelConfig with_bias = config;
  with_bias.attention_qkv_bias = true;
  EXPECT_THROW(GgufWeightSource(file, with_bias), Error);  // attn_q.bias missing
}

// A complete model written by gguf-py's GGUFWriter (scripts/golden/gguf_fuzz_corpus.py).
TEST(GgufWeightSource, ReadsGgufPyWrittenModel) {
  const auto file = GgufFile::open(testing::source_dir() / "tests/fuzz/corpus/fuzz_gguf/tiny_llama.gguf");
  const ModelConfig config = model_config_from_gguf(*file);
  EXPECT_EQ(config.num_layers, 1);
  EXPECT_EQ(config.hidden_size, 32);
  EXPECT_EQ(config.head_dim, 16);
  EXPECT_EQ(config.num_kv_heads, 1);
  EXPECT_EQ(config.vocab_size, 4);
  EXPECT_EQ(config.eos_token_ids, (std::vector<int>{3}));
  GgufWeightSource source(file, config);
  EXPECT_EQ(source.info({WeightKind::kAttnQ, 0}).storage_type, "Q8_0");
  EXPECT_EQ(source.info({WeightKind::kAttnQ, 0}).shape, (std::vector<int64_t>{32, 32}));
}

TEST(GgufWeightSource, SmolLm2) {
  const auto path = testing::default_model_path();
  TESSERA_REQUIRE_MODEL(path);
  const auto file = GgufFile::open(path);
  const ModelConfig config = model_config_from_gguf(*file);
  GgufWeightSource source(file, config);
  EXPECT_FALSE(source.has({WeightKind::kLmHead}));
  EXPECT_EQ(source.info({WeightKind::kTokenEmbedding}).shape, (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(source.info({WeightKind::kTokenEmbedding}).storage_type, "Q8_0");
  EXPECT_EQ(source.info({WeightKind::kAttnK, 29}).shape, (std::vector<int64_t>{192, 576}));
  EXPECT_EQ(source.info({WeightKind::kAttnK, 29}).storage_type, "Q4_1");
  EXPECT_EQ(source.info({WeightKind::kFfnDown, 0}).shape, (std::vector<int64_t>{576, 1536}));
  // Q comes back with every HF row i equal to GGUF row gguf_permuted_row(i); V is read as stored.
  const GgufTensorInfo& stored_q = *file->find_tensor("blk.5.attn_q.weight");
  std::vector<float> gguf_q(576 * 576), hf_q(576 * 576);
  file->read_rows(stored_q, 0, 576, gguf_q.data());
  source.read_rows({WeightKind::kAttnQ, 5}, 0, 576, hf_q.data());
  for (int64_t r = 0; r < 576; ++r) {
    const int64_t g = gguf_permuted_row(r, 64);
    ASSERT_TRUE(std::equal(hf_q.begin() + r * 576, hf_q.begin() + (r + 1) * 576, gguf_q.begin() + g * 576)) << r;
  }
  // Column slices of the permuted Q agree with its rows.
  std::vector<float> cols(576 * 100);
  source.read_columns({WeightKind::kAttnQ, 5}, 200, 300, cols.data());
  for (int64_t r = 0; r < 576; ++r) {
    ASSERT_TRUE(std::equal(cols.begin() + r * 100, cols.begin() + (r + 1) * 100, hf_q.begin() + r * 576 + 200)) << r;
  }
}

}  // namespace
}  // namespace tessera::runtime
