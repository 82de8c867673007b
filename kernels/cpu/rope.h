#pragma once
// Rotary position embedding (RoPE) on the CPU, following Hugging Face's LlamaRotaryEmbedding bit for bit in f32:
//   inv_freq[i] = 1 / theta^(f32(2i) / dim)              (i < dim / 2, all f32, then the scaling below)
//   angle       = f32(position) * inv_freq[i]             (one f32 product)
//   cos, sin    = cos(angle), sin(angle) in f32
// Scaling of the frequencies (HF "rope_type"):
//   kLinear: inv_freq /= factor (equivalent to positions / factor; HF divides the frequencies).
//   kLlama3: HF's _compute_llama3_parameters: wavelengths above original_max / low_freq_factor are divided by
//            factor, below original_max / high_freq_factor kept, in between interpolated smoothly.
#include <cstdint>
#include <vector>

namespace tessera::kernels::cpu {

// Which elements of a head form a rotated pair.
enum class RopeLayout {
  kNeox,         // "rotate half": pairs (i, i + dim/2). HF Llama/Mistral/Qwen2 checkpoints, GGUF qwen2.
  kInterleaved,  // GPT-J style: pairs (2i, 2i + 1). GGUF llama (its converter permutes Q/K rows into this).
};

enum class RopeScalingKind { kNone, kLinear, kLlama3 };

struct RopeConfig {
  int64_t head_dim = 0;  // rotated dimension (every element of a head is rotated); even
  float theta = 10000.0f;
  RopeScalingKind scaling = RopeScalingKind::kNone;
  float factor = 1.0f;           // kLinear and kLlama3
  float low_freq_factor = 1.0f;  // kLlama3
  float high_freq_factor = 4.0f;
  int64_t original_max_position_embeddings = 8192;
};

// The dim / 2 inverse frequencies, scaling applied. Throws tessera::Error on an odd or non-positive head_dim,
// theta <= 0, factor <= 0, or llama3 with high_freq_factor <= low_freq_factor.
std::vector<float> rope_inv_freq(const RopeConfig& config);

// cos/sin of every (position, frequency) for positions [0, positions()), grown on demand (capacity doubles).
// Rows are [positions, head_dim / 2] row-major, contiguous: a GPU backend may copy them as they are.
// Not thread-safe while growing.
class RopeTable {
 public:
  explicit RopeTable(const RopeConfig& config, int64_t initial_positions = 0);

  // Makes positions [0, positions) available (no-op when they already are).
  void reserve(int64_t positions);

  int64_t positions() const { return positions_; }
  int64_t half_dim() const { return half_dim_; }
  const RopeConfig& config() const { return config_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  // [half_dim] values for one position; position must be < positions().
  const float* cos(int64_t position) const { return cos_.data() + position * half_dim_; }
  const float* sin(int64_t position) const { return sin_.data() + position * half_dim_; }

 private:
  RopeConfig config_;
  int64_t half_dim_ = 0;
  int64_t positions_ = 0;
  std::vector<float> inv_freq_;
  std::vector<float> cos_;  // [positions_, half_dim_]
  std::vector<float> sin_;
};

// Rotates q and k in place, token t by the angle of positions[t]; grows the table as needed.
//   q: [tokens, q_heads, head_dim], token rows q_token_stride floats apart (>= q_heads * head_dim; a fused
//      QKV buffer passes its full row width), heads contiguous inside a row.
//   k: [tokens, kv_heads, head_dim], token rows k_token_stride floats apart; may be null when kv_heads == 0.
//   positions: [tokens], each >= 0.
// Throws tessera::Error on a negative position or inconsistent sizes.
void apply_rope(float* q, int64_t q_heads, int64_t q_token_stride, float* k, int64_t kv_heads, int64_t k_token_stride,
                const int32_t* positions, int64_t tokens, RopeTable& table, RopeLayout layout);

}  // namespace tessera::kernels::cpu
