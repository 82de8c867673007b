#include "kernels/cpu/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kernels/base/error.h"

namespace tessera::kernels::cpu {
namespace {

void validate(const RopeConfig& c) {
  TESSERA_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, "rope: head_dim must be positive and even, got ", c.head_dim);
  TESSERA_CHECK(c.theta > 0.0f, "rope: theta must be > 0, got ", c.theta);
  if (c.scaling != RopeScalingKind::kNone) {
    TESSERA_CHECK(c.factor > 0.0f, "rope: scaling factor must be > 0, got ", c.factor);
  }
  if (c.scaling == RopeScalingKind::kLlama3) {
    TESSERA_CHECK(c.low_freq_factor > 0.0f && c.high_freq_factor > c.low_freq_factor,
                  "rope llama3: need 0 < low_freq_factor < high_freq_factor, got ", c.low_freq_factor, " and ",
                  c.high_freq_factor);
    TESSERA_CHECK(c.original_max_position_embeddings > 0,
                  "rope llama3: original_max_position_embeddings must be > 0, got ",
                  c.original_max_position_embeddings);
  }
}

// HF _compute_llama3_parameters, operation by operation in f32 as torch evaluates it on a float32 tensor
// (python `scalar / tensor` is torch's tensor.reciprocal() * scalar; the thresholds are python doubles that the
// comparison rounds to f32).
float llama3_scale(float inv_freq, const RopeConfig& c) {
  const double old_context = static_cast<double>(c.original_max_position_embeddings);
  const auto low_freq_wavelen = static_cast<float>(old_context / static_cast<double>(c.low_freq_factor));
  const auto high_freq_wavelen = static_cast<float>(old_context / static_cast<double>(c.high_freq_factor));
  const float wavelen = (1.0f / inv_freq) * (2.0f * std::numbers::pi_v<float>);
  if (wavelen < high_freq_wavelen) return inv_freq;            // high frequency: unchanged
  if (wavelen > low_freq_wavelen) return inv_freq / c.factor;  // low frequency: positions interpolated
  const auto freq_span =
      static_cast<float>(static_cast<double>(c.high_freq_factor) - static_cast<double>(c.low_freq_factor));
  const float smooth = ((1.0f / wavelen) * static_cast<float>(old_context) - c.low_freq_factor) / freq_span;
  return (1.0f - smooth) * inv_freq / c.factor + smooth * inv_freq;
}

// Rotates the pairs of one head: (x[a], x[b]) -> (x[a] cos - x[b] sin, x[b] cos + x[a] sin).
void rotate_head(float* x, const float* cos, const float* sin, int64_t half, RopeLayout layout) {
  if (layout == RopeLayout::kNeox) {
    float* lo = x;
    float* hi = x + half;
    for (int64_t i = 0; i < half; ++i) {
      const float a = lo[i];
      const float b = hi[i];
      lo[i] = a * cos[i] - b * sin[i];
      hi[i] = b * cos[i] + a * sin[i];
    }
    return;
  }
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[2 * i];
    const float b = x[2 * i + 1];
    x[2 * i] = a * cos[i] - b * sin[i];
    x[2 * i + 1] = b * cos[i] + a * sin[i];
  }
}

}  // namespace

std::vector<float> rope_inv_freq(const RopeConfig& config) {
  validate(config);
  const int64_t half = config.head_dim / 2;
  const float dim = static_cast<float>(config.head_dim);
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), every step in f32.
    const float exponent = static_cast<float>(2 * i) / dim;
    float f = 1.0f / std::pow(config.theta, exponent);  // std::pow(float, float): f32 like torch
    if (config.scaling == RopeScalingKind::kLinear) f /= config.factor;
    if (config.scaling == RopeScalingKind::kLlama3) f = llama3_scale(f, config);
    inv_freq[static_cast<size_t>(i)] = f;
  }
  return inv_freq;
}

RopeTable::RopeTable(const RopeConfig& config, int64_t initial_positions)
    : config_(config), half_dim_(config.head_dim / 2), inv_freq_(rope_inv_freq(config)) {
  reserve(initial_positions);
}

void RopeTable::reserve(int64_t positions) {
  TESSERA_CHECK(positions >= 0, "RopeTable::reserve: negative position count ", positions);
  if (positions <= positions_) return;
  // Grow geometrically so that decoding one position at a time costs amortised O(1) per step.
  const int64_t target = std::max(positions, 2 * positions_);
  cos_.resize(static_cast<size_t>(target * half_dim_));
  sin_.resize(static_cast<size_t>(target * half_dim_));
  for (int64_t p = positions_; p < target; ++p) {
    const float pos = static_cast<float>(p);
    for (int64_t i = 0; i < half_dim_; ++i) {
      const float angle = pos * inv_freq_[static_cast<size_t>(i)];
      cos_[static_cast<size_t>(p * half_dim_ + i)] = std::cos(angle);
      sin_[static_cast<size_t>(p * half_dim_ + i)] = std::sin(angle);
    }
  }
  positions_ = target;
}

void apply_rope(float* q, int64_t q_heads, int64_t q_token_stride, float* k, int64_t kv_heads, int64_t k_token_stride,
                const int32_t* positions, int64_t tokens, RopeTable& table, RopeLayout layout) {
  const int64_t head_dim = table.config().head_dim;
  TESSERA_CHECK(tokens >= 0 && q_heads >= 0 && kv_heads >= 0, "apply_rope: negative size (tokens=", tokens,
                ", q_heads=", q_heads, ", kv_heads=", kv_heads, ")");
  TESSERA_CHECK(q_token_stride >= q_heads * head_dim, "apply_rope: q token stride ", q_token_stride,
                " is smaller than q_heads * head_dim = ", q_heads * head_dim);
  TESSERA_CHECK(kv_heads == 0 || (k != nullptr && k_token_stride >= kv_heads * head_dim),
                "apply_rope: k is null or its token stride ", k_token_stride,
                " is smaller than kv_heads * head_dim = ", kv_heads * head_dim);
  int64_t max_position = -1;
  for (int64_t t = 0; t < tokens; ++t) {
    TESSERA_CHECK(positions[t] >= 0, "apply_rope: negative position ", positions[t], " for token ", t);
    max_position = std::max<int64_t>(max_position, positions[t]);
  }
  table.reserve(max_position + 1);
  const int64_t half = table.half_dim();
  for (int64_t t = 0; t < tokens; ++t) {
    const float* cos = table.cos(positions[t]);
    const float* sin = table.sin(positions[t]);
    for (int64_t h = 0; h < q_heads; ++h) rotate_head(q + t * q_token_stride + h * head_dim, cos, sin, half, layout);
    for (int64_t h = 0; h < kv_heads; ++h) rotate_head(k + t * k_token_stride + h * head_dim, cos, sin, half, layout);
  }
}

}  // namespace tessera::kernels::cpu
