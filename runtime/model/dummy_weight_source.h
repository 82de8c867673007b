#pragma once
// A WeightSource without a file: every weight a ModelConfig implies, with its real shape and deterministic
// pseudo-random values. Element i (row-major) of weight `id` is a pure function of (seed, id, i), so any row or
// column range reads the same values a full read would, on every rank: a layout can be checked against another
// and a backend against another at any model size, without a model file (`dummy:<preset>` model paths).
//
// Values are uniform with the scale of a trained model's where it matters for the numerics: matrices
// 1/sqrt(fan_in) standard deviation (activations keep their size through the layers), norm weights near 1,
// biases small. They are not a trained model: the text they produce is noise.
#include <cstdint>
#include <utility>

#include "runtime/model/model_config.h"
#include "runtime/model/weight_source.h"

namespace tessera::runtime {

class DummyWeightSource final : public WeightSource {
 public:
  explicit DummyWeightSource(ModelConfig config, uint64_t seed = 0);

  bool has(const WeightId& id) const override;
  WeightInfo info(const WeightId& id) const override;
  void read_rows(const WeightId& id, int64_t row_begin, int64_t row_end, float* out) const override;
  void read_columns(const WeightId& id, int64_t col_begin, int64_t col_end, float* out) const override;
  std::string describe() const override;

  // The value of element `index` (row-major) of weight `id`: what every read returns for it.
  float value(const WeightId& id, int64_t index) const;

 private:
  // {rows, cols} of a matrix, {size, 1} of a vector; throws naming the weight when the model has no such weight.
  std::pair<int64_t, int64_t> extent(const WeightId& id) const;
  struct Generator;
  Generator generator(const WeightId& id) const;

  ModelConfig config_;
  uint64_t seed_;
};

}  // namespace tessera::runtime
