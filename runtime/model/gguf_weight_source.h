#pragma once
// WeightSource over one GGUF file, with llama.cpp's tensor names (token_embd.weight, blk.N.attn_q.weight, ...).
// llama.cpp's converter permutes the rows of Q and K (and their biases) for the "llama" architecture, from
// Hugging Face's rotate-half layout to interleaved pairs:
//   HF -> GGUF: w.reshape(n_head, 2, head_dim / 2, in).swapaxes(1, 2).reshape(out, in)
// This source undoes it row by row, so callers always see Hugging Face order, and a row range names HF rows
// (each mapped to the GGUF row that holds it). Qwen2 files are not permuted.
// On construction every weight the config implies is checked to exist with the expected shape and a type
// Tessera can dequantize, so a mismatched file fails at load time.
#include <filesystem>
#include <memory>
#include <string>

#include "runtime/model/gguf_file.h"
#include "runtime/model/model_config.h"
#include "runtime/model/weight_source.h"

namespace tessera::runtime {

// "blk.3.attn_q.weight", "token_embd.weight", "output.weight" (for kLmHead).
std::string gguf_tensor_name(const WeightId& id);

// The GGUF row holding Hugging Face row `hf_row` of a Q or K projection permuted by llama.cpp's converter
// (head_dim even). Rows of one head stay within that head.
int64_t gguf_permuted_row(int64_t hf_row, int64_t head_dim);

class GgufWeightSource final : public WeightSource {
 public:
  GgufWeightSource(std::shared_ptr<const GgufFile> file, const ModelConfig& config);
  // Opens and parses the file; `config` usually comes from model_config_from_gguf on the same file.
  static std::unique_ptr<GgufWeightSource> open(const std::filesystem::path& path, const ModelConfig& config);

  bool has(const WeightId& id) const override;
  WeightInfo info(const WeightId& id) const override;
  void read_rows(const WeightId& id, int64_t row_begin, int64_t row_end, float* out) const override;
  void read_columns(const WeightId& id, int64_t col_begin, int64_t col_end, float* out) const override;
  // The stored blocks of the same slices (Q/K rows gathered in Hugging Face order); nullopt for vectors and for
  // column slices that cut blocks.
  std::optional<kernels::cpu::QuantizedRows> read_rows_raw(const WeightId& id, int64_t row_begin,
                                                           int64_t row_end) const override;
  std::optional<kernels::cpu::QuantizedRows> read_columns_raw(const WeightId& id, int64_t col_begin,
                                                              int64_t col_end) const override;
  std::string describe() const override { return file_->description(); }

  const GgufFile& file() const { return *file_; }

 private:
  const GgufTensorInfo& tensor(const WeightId& id) const;  // Error naming the weight and the file when absent
  bool permuted(const WeightId& id) const;  // stored in llama.cpp's interleaved Q/K order

  std::shared_ptr<const GgufFile> file_;
  ModelConfig config_;
  bool llama_permutation_ = false;
};

}  // namespace tessera::runtime
