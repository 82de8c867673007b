#include "runtime/model/stage_weights.h"

#include <optional>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

namespace k = kernels::cpu;

// Checks that a weight has the shape the config promises before reading it, so a file that disagrees with its
// own metadata is an error naming the tensor, not an out-of-bounds read.
void expect_shape(const WeightSource& source, const WeightId& id, std::vector<int64_t> expected) {
  const WeightInfo info = source.info(id);
  TESSERA_CHECK(info.shape == expected, source.describe(), ": ", to_string(id), " has shape ",
                Shape(info.shape).to_string(), " but the model config implies ", Shape(expected).to_string());
}

Tensor read_vector(const WeightSource& source, WeightId id, int64_t size) {
  expect_shape(source, id, {size});
  Tensor t(DType::F32, {size});
  source.read_rows(id, 0, size, t.data<float>());
  return t;
}

// A matrix read in f32 (`values`, [rows, cols]) kept in the requested format.
WeightMatrix pack(std::vector<float> values, int64_t rows, int64_t cols, k::WeightFormat format) {
  if (format == k::WeightFormat::kQ8_0 && cols % k::kQ8BlockSize != 0) format = k::WeightFormat::kF32;
  return WeightMatrix(std::move(values), rows, cols, format);
}

// One piece of a (possibly fused) matrix: rows [begin, end) of weight `id`, stacked under the pieces before it,
// or (row-parallel matrices) columns [begin, end) of every row of it.
struct MatrixPart {
  WeightId id;
  int64_t rows = 0, cols = 0;  // the whole weight's shape, checked against the file
  int64_t begin = 0, end = 0;
  bool columns = false;

  int64_t out_rows() const { return columns ? rows : end - begin; }
  int64_t out_cols() const { return columns ? end - begin : cols; }
};

MatrixPart row_part(WeightId id, int64_t rows, int64_t cols, int64_t begin, int64_t end) {
  return {id, rows, cols, begin, end, false};
}
MatrixPart column_part(WeightId id, int64_t rows, int64_t cols, int64_t begin, int64_t end) {
  return {id, rows, cols, begin, end, true};
}

// The parts as the file stores them, when every one of them is in a block format (Q4_1, Q8_0, Q4_K, ...): plain
// f32/f16/bf16 weights, sources without stored blocks (safetensors, dummy) and column slices that cut blocks give
// nullopt, and the matrix is then kept in f32 like the default.
std::optional<WeightMatrix> read_native(const WeightSource& source, const std::vector<MatrixPart>& parts) {
  std::vector<k::QuantizedRows> stored;
  for (const MatrixPart& p : parts) {
    std::optional<k::QuantizedRows> q =
        p.columns ? source.read_columns_raw(p.id, p.begin, p.end) : source.read_rows_raw(p.id, p.begin, p.end);
    if (!q || k::quant_layout(q->format).block_elements == 1) return std::nullopt;
    TESSERA_CHECK(q->rows == p.out_rows() && q->cols == p.out_cols(), source.describe(), ": ", to_string(p.id),
                  ": stored slice of [", q->rows, ", ", q->cols, "] where [", p.out_rows(), ", ", p.out_cols(),
                  "] was asked for");
    stored.push_back(std::move(*q));
  }
  return WeightMatrix(std::move(stored));
}

// The parts, stacked, as one matrix of `cols` columns in `format`.
WeightMatrix load_matrix(const WeightSource& source, const std::vector<MatrixPart>& parts, int64_t cols,
                         k::WeightFormat format) {
  int64_t rows = 0;
  for (const MatrixPart& p : parts) {
    expect_shape(source, p.id, {p.rows, p.cols});
    TESSERA_CHECK(p.out_cols() == cols, "load_matrix: ", to_string(p.id), " gives ", p.out_cols(), " columns, not ",
                  cols);
    rows += p.out_rows();
  }
  if (format == k::WeightFormat::kNative) {
    if (std::optional<WeightMatrix> native = read_native(source, parts)) return std::move(*native);
    format = k::WeightFormat::kF32;
  }
  std::vector<float> values(static_cast<size_t>(rows * cols));
  int64_t row = 0;
  for (const MatrixPart& p : parts) {
    if (p.out_rows() == 0) continue;
    if (p.columns) {
      source.read_columns(p.id, p.begin, p.end, values.data() + row * cols);
    } else {
      source.read_rows(p.id, p.begin, p.end, values.data() + row * cols);
    }
    row += p.out_rows();
  }
  return pack(std::move(values), rows, cols, format);
}

void read_bias_into(const WeightSource& source, WeightId id, int64_t size, int64_t begin, int64_t end, Tensor& out,
                    int64_t offset) {
  expect_shape(source, id, {size});
  source.read_rows(id, begin, end, out.data<float>() + offset);
}

LayerWeights load_layer(const WeightSource& source, const ModelConfig& c, const TensorParallelShard& s, int layer,
                        k::WeightFormat format) {
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_rows = s.local_q_heads() * hd, kv_rows = s.local_kv_heads() * hd;
  const int64_t q_all = static_cast<int64_t>(c.num_heads) * hd, kv_all = static_cast<int64_t>(c.num_kv_heads) * hd;
  LayerWeights w;
  w.attn_norm = read_vector(source, {WeightKind::kAttnNorm, layer}, hidden);
  w.ffn_norm = read_vector(source, {WeightKind::kFfnNorm, layer}, hidden);

  const int64_t qkv_rows = q_rows + 2 * kv_rows;
  w.qkv = load_matrix(source,
                      {row_part({WeightKind::kAttnQ, layer}, q_all, hidden, s.q_head_begin * hd, s.q_head_end * hd),
                       row_part({WeightKind::kAttnK, layer}, kv_all, hidden, s.kv_head_begin * hd, s.kv_head_end * hd),
                       row_part({WeightKind::kAttnV, layer}, kv_all, hidden, s.kv_head_begin * hd, s.kv_head_end * hd)},
                      hidden, format);
  if (c.attention_qkv_bias) {
    w.qkv_bias = Tensor(DType::F32, {qkv_rows});
    read_bias_into(source, {WeightKind::kAttnQBias, layer}, q_all, s.q_head_begin * hd, s.q_head_end * hd, w.qkv_bias, 0);
    read_bias_into(source, {WeightKind::kAttnKBias, layer}, kv_all, s.kv_head_begin * hd, s.kv_head_end * hd,
                   w.qkv_bias, q_rows);
    read_bias_into(source, {WeightKind::kAttnVBias, layer}, kv_all, s.kv_head_begin * hd, s.kv_head_end * hd,
                   w.qkv_bias, q_rows + kv_rows);
  }

  w.attn_output = load_matrix(
      source, {column_part({WeightKind::kAttnOutput, layer}, hidden, q_all, s.q_head_begin * hd, s.q_head_end * hd)},
      q_rows, format);

  const int64_t ffn = c.intermediate_size, ffn_local = s.local_ffn();
  w.gate_up = load_matrix(source,
                          {row_part({WeightKind::kFfnGate, layer}, ffn, hidden, s.ffn_begin, s.ffn_end),
                           row_part({WeightKind::kFfnUp, layer}, ffn, hidden, s.ffn_begin, s.ffn_end)},
                          hidden, format);
  w.down = load_matrix(source, {column_part({WeightKind::kFfnDown, layer}, hidden, ffn, s.ffn_begin, s.ffn_end)},
                       ffn_local, format);
  return w;
}

Tensor read_vocab_rows(const WeightSource& source, WeightId id, const ModelConfig& c, const TensorParallelShard& s) {
  expect_shape(source, id, {c.vocab_size, c.hidden_size});
  Tensor t(DType::F32, {s.local_vocab(), c.hidden_size});
  if (s.local_vocab() > 0) source.read_rows(id, s.vocab_begin, s.vocab_end, t.data<float>());
  return t;
}

WeightMatrix read_lm_head(const WeightSource& source, WeightId id, const ModelConfig& c, const TensorParallelShard& s,
                          k::WeightFormat format) {
  return load_matrix(source, {row_part(id, c.vocab_size, c.hidden_size, s.vocab_begin, s.vocab_end)}, c.hidden_size,
                     format);
}

}  // namespace

LayerWeights load_layer_weights(const WeightSource& source, const ModelConfig& config, const TensorParallelShard& shard,
                                int layer, k::WeightFormat matrix_format) {
  return load_layer(source, config, shard, layer, matrix_format);
}

size_t StageWeights::bytes() const {
  size_t total = embedding.nbytes() + output_norm.nbytes() + lm_head.bytes();
  for (const LayerWeights& w : layer) {
    total += w.attn_norm.nbytes() + w.qkv.bytes() + w.qkv_bias.nbytes() + w.attn_output.bytes() +
             w.ffn_norm.nbytes() + w.gate_up.bytes() + w.down.bytes();
  }
  return total;
}

StageWeights load_stage_weights(const WeightSource& source, const ModelConfig& config,
                                const TensorParallelShard& shard, parallel::LayerRange layers, bool first_stage,
                                bool last_stage, k::WeightFormat matrix_format) {
  StageWeights weights;
  weights.layers = layers;
  if (first_stage) weights.embedding = read_vocab_rows(source, {WeightKind::kTokenEmbedding}, config, shard);
  for (int layer = layers.begin; layer < layers.end; ++layer) {
    weights.layer.push_back(load_layer(source, config, shard, layer, matrix_format));
  }
  if (last_stage) {
    weights.output_norm = read_vector(source, {WeightKind::kOutputNorm}, config.hidden_size);
    const WeightId head = config.tie_word_embeddings ? WeightId{WeightKind::kTokenEmbedding} : WeightId{WeightKind::kLmHead};
    weights.lm_head = read_lm_head(source, head, config, shard, matrix_format);
  }
  return weights;
}

}  // namespace tessera::runtime
