#pragma once
// The internal weight naming and the interface every model-file reader offers to the decoder.
// Names are typed (kind + layer), never string-keyed maps. Shapes are PyTorch order: [out_features,
// in_features] for matrices, so a "row range" is a slice of output features (column-parallel shards) and
// a "column range" a slice of input features (row-parallel shards).
// Q and K projections are returned in Hugging Face layout (rotate-half RoPE), whatever the file stores:
// GGUF's llama Q/K permutation is undone by the GGUF source.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/cpu/quantized_rows.h"

namespace tessera::runtime {

enum class WeightKind {
  kTokenEmbedding,  // [vocab, hidden]
  kAttnNorm,        // [hidden]
  kAttnQ,           // [heads * head_dim, hidden]
  kAttnK,           // [kv_heads * head_dim, hidden]
  kAttnV,           // [kv_heads * head_dim, hidden]
  kAttnQBias,       // [heads * head_dim]          (Qwen2)
  kAttnKBias,       // [kv_heads * head_dim]       (Qwen2)
  kAttnVBias,       // [kv_heads * head_dim]       (Qwen2)
  kAttnOutput,      // [hidden, heads * head_dim]
  kFfnNorm,         // [hidden]
  kFfnGate,         // [intermediate, hidden]
  kFfnUp,           // [intermediate, hidden]
  kFfnDown,         // [hidden, intermediate]
  kOutputNorm,      // [hidden]
  kLmHead,          // [vocab, hidden]; absent when embeddings are tied
};

struct WeightId {
  WeightKind kind;
  int layer = -1;  // -1 for the model-level weights
  bool operator==(const WeightId&) const = default;
};

std::string to_string(const WeightId& id);  // "layer 3 attn_q"

struct WeightInfo {
  std::vector<int64_t> shape;  // PyTorch order
  std::string storage_type;    // as stored in the file: "Q4_1", "BF16", "F32", ...
  uint64_t stored_bytes = 0;   // bytes in the file for the whole tensor
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;

  virtual bool has(const WeightId& id) const = 0;
  // Throws tessera::Error naming the file and the tensor when it is missing.
  virtual WeightInfo info(const WeightId& id) const = 0;
  // Rows [row_begin, row_end) of a matrix (or elements of a vector), dequantized to f32, row-major into out
  // (which holds (row_end - row_begin) * columns floats). Reads only those rows from the file.
  virtual void read_rows(const WeightId& id, int64_t row_begin, int64_t row_end, float* out) const = 0;
  // Columns [col_begin, col_end) of every row of a matrix, dequantized, row-major into out
  // (rows * (col_end - col_begin) floats).
  virtual void read_columns(const WeightId& id, int64_t col_begin, int64_t col_end, float* out) const = 0;
  // The same rows as read_rows, but as the file stores them (ggml blocks: kernels/cpu/quantized_rows.h), for
  // PackedMatrix's native format. nullopt when the source has no stored blocks to offer (the default: safetensors,
  // dummy weights) or the weight is not a matrix.
  virtual std::optional<kernels::cpu::QuantizedRows> read_rows_raw(const WeightId& /*id*/, int64_t /*row_begin*/,
                                                                   int64_t /*row_end*/) const {
    return std::nullopt;
  }
  // The same slice as read_columns, as stored: only possible when both ends fall on block boundaries of the
  // stored rows; nullopt otherwise (and by default).
  virtual std::optional<kernels::cpu::QuantizedRows> read_columns_raw(const WeightId& /*id*/, int64_t /*col_begin*/,
                                                                      int64_t /*col_end*/) const {
    return std::nullopt;
  }
  // A description for error messages: "model.gguf", "/models/llama (4 safetensors shards)".
  virtual std::string describe() const = 0;
};

}  // namespace tessera::runtime
