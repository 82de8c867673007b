#pragma once
// WeightSource over a Hugging Face model directory's safetensors (single file or shards), with the HF tensor
// names of Llama / Mistral / Qwen2 (model.layers.N.self_attn.q_proj.weight, ...). HF already stores Q and K in
// rotate-half layout, so nothing is permuted. On construction every weight the config implies is checked to
// exist with the shape the config gives and a float dtype, so a mismatched checkpoint fails at load time.
#include <filesystem>
#include <memory>
#include <string>

#include "runtime/model/model_config.h"
#include "runtime/model/safetensors_checkpoint.h"
#include "runtime/model/weight_source.h"

namespace tessera::runtime {

// "model.layers.3.self_attn.q_proj.weight"
std::string hf_tensor_name(const WeightId& id);

class HfWeightSource final : public WeightSource {
 public:
  HfWeightSource(SafetensorsCheckpoint checkpoint, const ModelConfig& config);
  // Opens the checkpoint in `directory` (see SafetensorsCheckpoint::open).
  static std::unique_ptr<HfWeightSource> open(const std::filesystem::path& directory, const ModelConfig& config);

  bool has(const WeightId& id) const override;
  WeightInfo info(const WeightId& id) const override;
  void read_rows(const WeightId& id, int64_t row_begin, int64_t row_end, float* out) const override;
  void read_columns(const WeightId& id, int64_t col_begin, int64_t col_end, float* out) const override;
  std::string describe() const override { return checkpoint_.describe(); }

 private:
  // The file and tensor of a weight the config implies; Error naming the weight and the checkpoint otherwise.
  SafetensorsCheckpoint::Location locate(const WeightId& id) const;

  SafetensorsCheckpoint checkpoint_;
  ModelConfig config_;
};

}  // namespace tessera::runtime
