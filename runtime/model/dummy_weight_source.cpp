#include "runtime/model/dummy_weight_source.h"

#include <cmath>

#include "kernels/base/error.h"
#include "kernels/cpu/parallel_for.h"
#include "runtime/core/shape.h"
#include "runtime/model/weight_layout.h"

namespace tessera::runtime {
namespace {

// splitmix64's finaliser: a cheap bijection whose outputs pass statistical tests even for sequential inputs.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool is_vector(WeightKind kind) {
  switch (kind) {
    case WeightKind::kAttnNorm:
    case WeightKind::kFfnNorm:
    case WeightKind::kOutputNorm:
    case WeightKind::kAttnQBias:
    case WeightKind::kAttnKBias:
    case WeightKind::kAttnVBias:
      return true;
    default:
      return false;
  }
}

bool is_norm(WeightKind kind) {
  return kind == WeightKind::kAttnNorm || kind == WeightKind::kFfnNorm || kind == WeightKind::kOutputNorm;
}

}  // namespace

DummyWeightSource::DummyWeightSource(ModelConfig config, uint64_t seed) : config_(std::move(config)), seed_(seed) {
  config_.validate();
}

// A matrix's [rows, cols]; a vector is rows x 1 (its elements are read as rows).
std::pair<int64_t, int64_t> DummyWeightSource::extent(const WeightId& id) const {
  TESSERA_CHECK(has(id), describe(), " has no weight ", to_string(id));
  const std::vector<int64_t> shape = expected_weight_shape(config_, id);
  return {shape[0], shape.size() > 1 ? shape[1] : 1};
}

bool DummyWeightSource::has(const WeightId& id) const { return config_implies_weight(config_, id); }

WeightInfo DummyWeightSource::info(const WeightId& id) const {
  const std::pair<int64_t, int64_t> size = extent(id);
  const int64_t rows = size.first, cols = size.second;
  WeightInfo info;
  info.shape = expected_weight_shape(config_, id);
  info.storage_type = "F32";
  info.stored_bytes = static_cast<uint64_t>(rows * cols) * sizeof(float);
  return info;
}

// The values of one weight: a hash stream per weight, and the weight's kind of scale.
struct DummyWeightSource::Generator {
  uint64_t stream;
  float offset;  // 1 for norm weights, 0 otherwise
  float scale;
  float operator()(int64_t index) const {
    const uint64_t bits = mix(stream ^ static_cast<uint64_t>(index));
    const float u = static_cast<float>(bits >> 40) * 0x1.0p-23f - 1.0f;  // uniform in [-1, 1)
    return offset + scale * u;
  }
};

DummyWeightSource::Generator DummyWeightSource::generator(const WeightId& id) const {
  const int64_t fan_in = extent(id).second;
  Generator g{};
  g.stream = mix(seed_ ^ mix((static_cast<uint64_t>(id.kind) << 32) | static_cast<uint32_t>(id.layer + 1)));
  if (is_norm(id.kind)) {
    g.offset = 1.0f;
    g.scale = 0.1f;
  } else if (is_vector(id.kind)) {
    g.scale = 0.02f;  // biases
  } else {
    // Uniform on [-a, a] has standard deviation a / sqrt(3): a = sqrt(3 / fan_in) gives 1 / sqrt(fan_in). The
    // embedding's "fan-in" is the hidden size, so that tied LM-head logits come out O(1).
    g.scale = std::sqrt(3.0f / static_cast<float>(fan_in));
  }
  return g;
}

float DummyWeightSource::value(const WeightId& id, int64_t index) const { return generator(id)(index); }

void DummyWeightSource::read_rows(const WeightId& id, int64_t row_begin, int64_t row_end, float* out) const {
  const std::pair<int64_t, int64_t> size = extent(id);
  const int64_t rows = size.first, cols = size.second;
  TESSERA_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= rows, describe(), ": rows [", row_begin, ", ",
                row_end, ") of ", to_string(id), " outside its ", rows, " rows");
  const Generator g = generator(id);
  kernels::cpu::parallel_for(row_end - row_begin, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t first = (row_begin + r) * cols;
      for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = g(first + c);
    }
  });
}

void DummyWeightSource::read_columns(const WeightId& id, int64_t col_begin, int64_t col_end, float* out) const {
  const std::pair<int64_t, int64_t> size = extent(id);
  const int64_t rows = size.first, cols = size.second;
  TESSERA_CHECK(!is_vector(id.kind), describe(), ": column read of the vector ", to_string(id));
  TESSERA_CHECK(0 <= col_begin && col_begin <= col_end && col_end <= cols, describe(), ": columns [", col_begin, ", ",
                col_end, ") of ", to_string(id), " outside its ", cols, " columns");
  const int64_t width = col_end - col_begin;
  const Generator g = generator(id);
  kernels::cpu::parallel_for(rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t c = 0; c < width; ++c) out[r * width + c] = g(r * cols + col_begin + c);
    }
  });
}

std::string DummyWeightSource::describe() const {
  return concat("dummy weights of ", config_.name.empty() ? config_.architecture : config_.name, " (seed ", seed_, ")");
}

}  // namespace tessera::runtime
