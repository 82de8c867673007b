#include "runtime/model/model_summary.h"

#include <algorithm>
#include <map>
#include <optional>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Stored bytes of a slice of one weight, from its shape and its whole-tensor size in the file. Every row of a
// tensor takes the same bytes (GGUF quantizes whole rows in whole blocks; safetensors is dense), so a row slice
// is exact. A column slice takes its share of each row, rounded up: a rank whose columns end inside a
// quantization block still reads that whole block.
class StoredSlices {
 public:
  explicit StoredSlices(const WeightSource& source) : source_(source) {}

  uint64_t whole(const WeightId& id) const { return source_.info(id).stored_bytes; }

  uint64_t rows(const WeightId& id, int64_t begin, int64_t end) const {
    const WeightInfo info = source_.info(id);
    const int64_t rows = info.shape.empty() ? 1 : info.shape.front();
    TESSERA_CHECK(rows > 0 && begin >= 0 && begin <= end && end <= rows, source_.describe(), ": ", to_string(id),
                  ": row slice [", begin, ", ", end, ") outside its ", rows, " rows");
    return info.stored_bytes / static_cast<uint64_t>(rows) * static_cast<uint64_t>(end - begin);
  }

  uint64_t columns(const WeightId& id, int64_t begin, int64_t end) const {
    const WeightInfo info = source_.info(id);
    TESSERA_CHECK(info.shape.size() == 2 && info.shape[0] > 0 && info.shape[1] > 0, source_.describe(), ": ",
                  to_string(id), " is not a matrix, cannot slice its columns");
    const auto rows = static_cast<uint64_t>(info.shape[0]), cols = static_cast<uint64_t>(info.shape[1]);
    TESSERA_CHECK(begin >= 0 && begin <= end && static_cast<uint64_t>(end) <= cols, source_.describe(), ": ",
                  to_string(id), ": column slice [", begin, ", ", end, ") outside its ", cols, " columns");
    const uint64_t row_bytes = info.stored_bytes / rows;
    const uint64_t slice_row_bytes = (row_bytes * static_cast<uint64_t>(end - begin) + cols - 1) / cols;
    return slice_row_bytes * rows;
  }

 private:
  const WeightSource& source_;
};

uint64_t stage_stored_bytes(const StoredSlices& stored, const ModelConfig& c, const TensorParallelShard& s,
                            parallel::LayerRange layers, bool first_stage, bool last_stage) {
  const int64_t hd = c.head_dim;
  const int64_t q_begin = s.q_head_begin * hd, q_end = s.q_head_end * hd;
  const int64_t kv_begin = s.kv_head_begin * hd, kv_end = s.kv_head_end * hd;
  uint64_t total = 0;
  if (first_stage) total += stored.rows({WeightKind::kTokenEmbedding}, s.vocab_begin, s.vocab_end);
  for (int layer = layers.begin; layer < layers.end; ++layer) {
    total += stored.whole({WeightKind::kAttnNorm, layer}) + stored.whole({WeightKind::kFfnNorm, layer});
    total += stored.rows({WeightKind::kAttnQ, layer}, q_begin, q_end);
    total += stored.rows({WeightKind::kAttnK, layer}, kv_begin, kv_end);
    total += stored.rows({WeightKind::kAttnV, layer}, kv_begin, kv_end);
    if (c.attention_qkv_bias) {
      total += stored.rows({WeightKind::kAttnQBias, layer}, q_begin, q_end);
      total += stored.rows({WeightKind::kAttnKBias, layer}, kv_begin, kv_end);
      total += stored.rows({WeightKind::kAttnVBias, layer}, kv_begin, kv_end);
    }
    total += stored.columns({WeightKind::kAttnOutput, layer}, q_begin, q_end);
    total += stored.rows({WeightKind::kFfnGate, layer}, s.ffn_begin, s.ffn_end);
    total += stored.rows({WeightKind::kFfnUp, layer}, s.ffn_begin, s.ffn_end);
    total += stored.columns({WeightKind::kFfnDown, layer}, s.ffn_begin, s.ffn_end);
  }
  if (last_stage) {
    total += stored.whole({WeightKind::kOutputNorm});
    const WeightId head = c.tie_word_embeddings ? WeightId{WeightKind::kTokenEmbedding} : WeightId{WeightKind::kLmHead};
    total += stored.rows(head, s.vocab_begin, s.vocab_end);
  }
  return total;
}

}  // namespace

WeightSummary summarize_weights(const ModelConfig& config, const WeightSource& source) {
  std::map<std::string, StorageTypeTotal> by_type;
  WeightSummary summary;
  for (const WeightId& id : model_weight_ids(config)) {
    const WeightInfo info = source.info(id);
    StorageTypeTotal& total = by_type[info.storage_type];
    total.storage_type = info.storage_type;
    const int64_t elements = element_count(info.shape);
    total.tensors += 1;
    total.elements += elements;
    total.stored_bytes += info.stored_bytes;
    summary.tensors += 1;
    summary.elements += elements;
    summary.stored_bytes += info.stored_bytes;
  }
  for (auto& [name, total] : by_type) summary.by_type.push_back(total);
  std::stable_sort(summary.by_type.begin(), summary.by_type.end(),
                   [](const StorageTypeTotal& a, const StorageTypeTotal& b) { return a.stored_bytes > b.stored_bytes; });
  return summary;
}

uint64_t packed_matrix_bytes(int64_t rows, int64_t cols, kernels::cpu::WeightFormat format) {
  namespace k = kernels::cpu;
  const auto elements = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  if (format == k::WeightFormat::kQ8_0 && cols % k::kQ8BlockSize != 0) format = k::WeightFormat::kF32;
  switch (format) {
    case k::WeightFormat::kF32: return elements * sizeof(float);
    case k::WeightFormat::kBF16: return elements * sizeof(uint16_t);
    case k::WeightFormat::kQ8_0: return elements + elements / k::kQ8BlockSize * sizeof(float);  // int8 + f32 scales
    case k::WeightFormat::kNative:
      fail("packed_matrix_bytes: a native matrix's bytes depend on the file's storage types (plan_rank_footprints)");
  }
  fail("unknown weight format ", static_cast<int>(format));
}

uint64_t stage_weight_bytes(const ModelConfig& c, const TensorParallelShard& s, parallel::LayerRange layers,
                            bool first_stage, bool last_stage, kernels::cpu::WeightFormat format) {
  // The tensors of load_stage_weights, one for one (see LayerWeights and StageWeights): vectors and the embedding
  // in f32, the projection matrices and the LM head in `format`.
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_rows = s.local_q_heads() * hd, kv_rows = s.local_kv_heads() * hd;
  const int64_t ffn_local = s.local_ffn(), vocab_local = s.local_vocab();
  const auto f32 = [](int64_t elements) { return static_cast<uint64_t>(elements) * sizeof(float); };
  uint64_t per_layer = f32(2 * hidden);                                      // attn_norm, ffn_norm
  per_layer += packed_matrix_bytes(q_rows + 2 * kv_rows, hidden, format);    // qkv
  if (c.attention_qkv_bias) per_layer += f32(q_rows + 2 * kv_rows);          // qkv_bias
  per_layer += packed_matrix_bytes(hidden, q_rows, format);                  // attn_output
  per_layer += packed_matrix_bytes(2 * ffn_local, hidden, format);           // gate_up
  per_layer += packed_matrix_bytes(hidden, ffn_local, format);               // down
  uint64_t total = per_layer * static_cast<uint64_t>(layers.size());
  if (first_stage) total += f32(vocab_local * hidden);  // embedding
  if (last_stage) total += f32(hidden) + packed_matrix_bytes(vocab_local, hidden, format);  // output_norm, lm_head
  return total;
}

namespace {

// A piece of a matrix as load_stage_weights reads it (its MatrixPart): rows [begin, end) of `id`, or columns.
struct Piece {
  WeightId id;
  int64_t begin = 0, end = 0;
  bool columns = false;
};

// The bytes load_stage_weights holds for a native matrix made of `pieces` ([rows, cols] in all): the stored blocks
// when every piece can be read as stored (a block format, and column slices on block boundaries: its read_native),
// else f32. A zero-row read_rows_raw probes the storage without copying any data.
uint64_t native_matrix_bytes(const WeightSource& source, const std::vector<Piece>& pieces, int64_t rows, int64_t cols) {
  namespace k = kernels::cpu;
  uint64_t stored = 0;
  for (const Piece& p : pieces) {
    const std::optional<k::QuantizedRows> probe = source.read_rows_raw(p.id, 0, 0);
    const int64_t block = probe ? k::quant_layout(probe->format).block_elements : 1;
    if (block == 1 || (p.columns && (p.begin % block != 0 || p.end % block != 0))) {
      return packed_matrix_bytes(rows, cols, k::WeightFormat::kF32);
    }
    const WeightInfo info = source.info(p.id);
    const int64_t piece_rows = p.columns ? info.shape.at(0) : p.end - p.begin;
    const int64_t piece_cols = p.columns ? p.end - p.begin : info.shape.at(1);
    stored += static_cast<uint64_t>(k::quantized_bytes(probe->format, piece_rows * piece_cols));
  }
  return stored;
}

// stage_weight_bytes for the native format, which needs the source's storage types.
uint64_t stage_native_bytes(const WeightSource& source, const ModelConfig& c, const TensorParallelShard& s,
                            parallel::LayerRange layers, bool first_stage, bool last_stage) {
  namespace k = kernels::cpu;
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_begin = s.q_head_begin * hd, q_end = s.q_head_end * hd;
  const int64_t kv_begin = s.kv_head_begin * hd, kv_end = s.kv_head_end * hd;
  const int64_t q_rows = q_end - q_begin, kv_rows = kv_end - kv_begin, ffn_local = s.local_ffn();
  // Everything but the matrices as in f32, then each matrix's f32 bytes swapped for its native bytes.
  uint64_t total = stage_weight_bytes(c, s, layers, first_stage, last_stage, k::WeightFormat::kF32);
  const auto swap = [&](const std::vector<Piece>& pieces, int64_t rows, int64_t cols) {
    total -= packed_matrix_bytes(rows, cols, k::WeightFormat::kF32);
    total += native_matrix_bytes(source, pieces, rows, cols);
  };
  for (int layer = layers.begin; layer < layers.end; ++layer) {
    swap({{{WeightKind::kAttnQ, layer}, q_begin, q_end},
          {{WeightKind::kAttnK, layer}, kv_begin, kv_end},
          {{WeightKind::kAttnV, layer}, kv_begin, kv_end}},
         q_rows + 2 * kv_rows, hidden);
    swap({{{WeightKind::kAttnOutput, layer}, q_begin, q_end, true}}, hidden, q_rows);
    swap({{{WeightKind::kFfnGate, layer}, s.ffn_begin, s.ffn_end},
          {{WeightKind::kFfnUp, layer}, s.ffn_begin, s.ffn_end}},
         2 * ffn_local, hidden);
    swap({{{WeightKind::kFfnDown, layer}, s.ffn_begin, s.ffn_end, true}}, hidden, ffn_local);
  }
  if (last_stage) {
    const WeightId head = c.tie_word_embeddings ? WeightId{WeightKind::kTokenEmbedding} : WeightId{WeightKind::kLmHead};
    swap({{head, s.vocab_begin, s.vocab_end}}, s.local_vocab(), hidden);
  }
  return total;
}

}  // namespace

std::vector<RankFootprint> plan_rank_footprints(const ModelConfig& config, const WeightSource& source,
                                                parallel::ParallelLayout layout,
                                                kernels::cpu::WeightFormat matrix_format) {
  TESSERA_CHECK(layout.pp >= 1, "pipeline-parallel size must be >= 1, got pp=", layout.pp);
  check_tensor_parallel_split(config, layout.tp);
  parallel::stage_layers(config.num_layers, layout, 0);  // throws for more stages than layers, or a bad partition
  const StoredSlices stored(source);
  std::vector<RankFootprint> ranks;
  for (int stage = 0; stage < layout.pp; ++stage) {
    for (int tp_rank = 0; tp_rank < layout.tp; ++tp_rank) {
      RankFootprint r;
      r.rank = stage * layout.tp + tp_rank;
      r.stage = stage;
      r.tp_rank = tp_rank;
      r.layers = parallel::stage_layers(config.num_layers, layout, stage);
      r.shard = make_tensor_parallel_shard(config, layout.tp, tp_rank);
      r.first_stage = stage == 0;
      r.last_stage = stage == layout.pp - 1;
      r.held_bytes = matrix_format == kernels::cpu::WeightFormat::kNative
                         ? stage_native_bytes(source, config, r.shard, r.layers, r.first_stage, r.last_stage)
                         : stage_weight_bytes(config, r.shard, r.layers, r.first_stage, r.last_stage, matrix_format);
      r.stored_bytes = stage_stored_bytes(stored, config, r.shard, r.layers, r.first_stage, r.last_stage);
      ranks.push_back(r);
    }
  }
  return ranks;
}

}  // namespace tessera::runtime
