#include "runtime/model/stage_weights.h"

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

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
                    Tensor& out, int64_t out_row) {
  expect_shape(source, id, {rows, cols});
  source.read_rows(id, begin, end, out.data<float>() + out_row * cols);
}

void read_bias_into(const WeightSource& source, WeightId id, int64_t size, int64_t begin, int64_t end, Tensor& out,
                    int64_t offset) {
  expect_shape(source, id, {size});
  source.read_rows(id, begin, end, out.data<float>() + offset);
}

LayerWeights load_layer(const WeightSource& source, const ModelConfig& c, const TensorParallelShard& s, int layer) {
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_rows = s.local_q_heads() * hd, kv_rows = s.local_kv_heads() * hd;
  const int64_t q_all = static_cast<int64_t>(c.num_heads) * hd, kv_all = static_cast<int64_t>(c.num_kv_heads) * hd;
  LayerWeights w;
  w.attn_norm = read_vector(source, {WeightKind::kAttnNorm, layer}, hidden);
  w.ffn_norm = read_vector(source, {WeightKind::kFfnNorm, layer}, hidden);

  w.qkv = Tensor(DType::F32, {q_rows + 2 * kv_rows, hidden});
  read_rows_into(source, {WeightKind::kAttnQ, layer}, q_all, hidden, s.q_head_begin * hd, s.q_head_end * hd, w.qkv, 0);
  read_rows_into(source, {WeightKind::kAttnK, layer}, kv_all, hidden, s.kv_head_begin * hd, s.kv_head_end * hd, w.qkv,
                 q_rows);
  read_rows_into(source, {WeightKind::kAttnV, layer}, kv_all, hidden, s.kv_head_begin * hd, s.kv_head_end * hd, w.qkv,
                 q_rows + kv_rows);
  if (c.attention_qkv_bias) {
    w.qkv_bias = Tensor(DType::F32, {q_rows + 2 * kv_rows});
    read_bias_into(source, {WeightKind::kAttnQBias, layer}, q_all, s.q_head_begin * hd, s.q_head_end * hd, w.qkv_bias, 0);
    read_bias_into(source, {WeightKind::kAttnKBias, layer}, kv_all, s.kv_head_begin * hd, s.kv_head_end * hd,
                   w.qkv_bias, q_rows);
    read_bias_into(source, {WeightKind::kAttnVBias, layer}, kv_all, s.kv_head_begin * hd, s.kv_head_end * hd,
                   w.qkv_bias, q_rows + kv_rows);
  }

  const WeightId output{WeightKind::kAttnOutput, layer};
  expect_shape(source, output, {hidden, q_all});
  w.attn_output = Tensor(DType::F32, {hidden, q_rows});
  source.read_columns(output, s.q_head_begin * hd, s.q_head_end * hd, w.attn_output.data<float>());

  const int64_t ffn = c.intermediate_size, ffn_local = s.local_ffn();
  w.gate_up = Tensor(DType::F32, {2 * ffn_local, hidden});
  read_rows_into(source, {WeightKind::kFfnGate, layer}, ffn, hidden, s.ffn_begin, s.ffn_end, w.gate_up, 0);
  read_rows_into(source, {WeightKind::kFfnUp, layer}, ffn, hidden, s.ffn_begin, s.ffn_end, w.gate_up, ffn_local);
  const WeightId down{WeightKind::kFfnDown, layer};
  expect_shape(source, down, {hidden, ffn});
  w.down = Tensor(DType::F32, {hidden, ffn_local});
  source.read_columns(down, s.ffn_begin, s.ffn_end, w.down.data<float>());
  return w;
}

Tensor read_vocab_rows(const WeightSource& source, WeightId id, const ModelConfig& c, const TensorParallelShard& s) {
  Tensor t(DType::F32, {s.local_vocab(), c.hidden_size});
  if (s.local_vocab() > 0) read_rows_into(source, id, c.vocab_size, c.hidden_size, s.vocab_begin, s.vocab_end, t, 0);
  return t;
}

}  // namespace

size_t StageWeights::bytes() const {
  size_t total = embedding.nbytes() + output_norm.nbytes() + lm_head.nbytes();
  for (const LayerWeights& w : layer) {
    total += w.attn_norm.nbytes() + w.qkv.nbytes() + w.qkv_bias.nbytes() + w.attn_output.nbytes() +
             w.ffn_norm.nbytes() + w.gate_up.nbytes() + w.down.nbytes();
  }
  return total;
}

StageWeights load_stage_weights(const WeightSource& source, const ModelConfig& config,
                                const TensorParallelShard& shard, parallel::LayerRange layers, bool first_stage,
                                bool last_stage) {
  StageWeights weights;
  weights.layers = layers;
  if (first_stage) weights.embedding = read_vocab_rows(source, {WeightKind::kTokenEmbedding}, config, shard);
  for (int layer = layers.begin; layer < layers.end; ++layer) {
    weights.layer.push_back(load_layer(source, config, shard, layer));
  }
  if (last_stage) {
    weights.output_norm = read_vector(source, {WeightKind::kOutputNorm}, config.hidden_size);
    const WeightId head = config.tie_word_embeddings ? WeightId{WeightKind::kTokenEmbedding} : WeightId{WeightKind::kLmHead};
    weights.lm_head = read_vocab_rows(source, head, config, shard);
  }
  return weights;
}

}  // namespace tessera::runtime
