#include "runtime/model/stage_weights.h"

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

// Rows [begin, end) of a [rows, cols] matrix into `out` starting at row `out_row`.
void read_rows_into(const WeightSource& source, WeightId id, int64_t rows, int64_t cols, int64_t begin, int64_t end,
                    float* out, int64_t out_row) {
  expect_shape(source, id, {rows, cols});
  source.read_rows(id, begin, end, out + out_row * cols);
}

// A matrix read in f32 (`values`, [rows, cols]) kept in the requested format.
WeightMatrix pack(std::vector<float> values, int64_t rows, int64_t cols, k::WeightFormat format) {
  if (format == k::WeightFormat::kQ8_0 && cols % k::kQ8BlockSize != 0) format = k::WeightFormat::kF32;
  return WeightMatrix(std::move(values), rows, cols, format);
}

std::vector<float> matrix_buffer(int64_t rows, int64_t cols) {
  return std::vector<float>(static_cast<size_t>(rows * cols));
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
  std::vector<float> qkv = matrix_buffer(qkv_rows, hidden);
  read_rows_into(source, {WeightKind::kAttnQ, layer}, q_all, hidden, s.q_head_begin * hd, s.q_head_end * hd, qkv.data(),
                 0);
  read_rows_into(source, {WeightKind::kAttnK, layer}, kv_all, hidden, s.kv_head_begin * hd, s.kv_head_end * hd,
                 qkv.data(), q_rows);
  read_rows_into(source, {WeightKind::kAttnV, layer}, kv_all, hidden, s.kv_head_begin * hd, s.kv_head_end * hd,
                 qkv.data(), q_rows + kv_rows);
  w.qkv = pack(std::move(qkv), qkv_rows, hidden, format);
  if (c.attention_qkv_bias) {
    w.qkv_bias = Tensor(DType::F32, {qkv_rows});
    read_bias_into(source, {WeightKind::kAttnQBias, layer}, q_all, s.q_head_begin * hd, s.q_head_end * hd, w.qkv_bias, 0);
    read_bias_into(source, {WeightKind::kAttnKBias, layer}, kv_all, s.kv_head_begin * hd, s.kv_head_end * hd,
                   w.qkv_bias, q_rows);
    read_bias_into(source, {WeightKind::kAttnVBias, layer}, kv_all, s.kv_head_begin * hd, s.kv_head_end * hd,
                   w.qkv_bias, q_rows + kv_rows);
  }

  const WeightId output{WeightKind::kAttnOutput, layer};
  expect_shape(source, output, {hidden, q_all});
  std::vector<float> attn_output = matrix_buffer(hidden, q_rows);
  source.read_columns(output, s.q_head_begin * hd, s.q_head_end * hd, attn_output.data());
  w.attn_output = pack(std::move(attn_output), hidden, q_rows, format);

  const int64_t ffn = c.intermediate_size, ffn_local = s.local_ffn();
  std::vector<float> gate_up = matrix_buffer(2 * ffn_local, hidden);
  read_rows_into(source, {WeightKind::kFfnGate, layer}, ffn, hidden, s.ffn_begin, s.ffn_end, gate_up.data(), 0);
  read_rows_into(source, {WeightKind::kFfnUp, layer}, ffn, hidden, s.ffn_begin, s.ffn_end, gate_up.data(), ffn_local);
  w.gate_up = pack(std::move(gate_up), 2 * ffn_local, hidden, format);
  const WeightId down{WeightKind::kFfnDown, layer};
  expect_shape(source, down, {hidden, ffn});
  std::vector<float> down_values = matrix_buffer(hidden, ffn_local);
  source.read_columns(down, s.ffn_begin, s.ffn_end, down_values.data());
  w.down = pack(std::move(down_values), hidden, ffn_local, format);
  return w;
}

Tensor read_vocab_rows(const WeightSource& source, WeightId id, const ModelConfig& c, const TensorParallelShard& s) {
  Tensor t(DType::F32, {s.local_vocab(), c.hidden_size});
  if (s.local_vocab() > 0) {
    read_rows_into(source, id, c.vocab_size, c.hidden_size, s.vocab_begin, s.vocab_end, t.data<float>(), 0);
  }
  return t;
}

WeightMatrix read_lm_head(const WeightSource& source, WeightId id, const ModelConfig& c, const TensorParallelShard& s,
                          k::WeightFormat format) {
  std::vector<float> values = matrix_buffer(s.local_vocab(), c.hidden_size);
  if (s.local_vocab() > 0) {
    read_rows_into(source, id, c.vocab_size, c.hidden_size, s.vocab_begin, s.vocab_end, values.data(), 0);
  }
  return pack(std::move(values), s.local_vocab(), c.hidden_size, format);
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
