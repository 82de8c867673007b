#include "runtime/model/model_config.h"

#include "kernels/base/error.h"

namespace tessera::runtime {

void ModelConfig::validate() const {
  const std::string where = concat("model config '", name.empty() ? architecture : name, "'");
  TESSERA_CHECK(num_layers > 0, where, ": num_layers must be positive, got ", num_layers);
  TESSERA_CHECK(hidden_size > 0, where, ": hidden_size must be positive, got ", hidden_size);
  TESSERA_CHECK(num_heads > 0, where, ": num_heads must be positive, got ", num_heads);
  TESSERA_CHECK(num_kv_heads > 0, where, ": num_kv_heads must be positive, got ", num_kv_heads);
  TESSERA_CHECK(num_heads % num_kv_heads == 0, where, ": num_heads ", num_heads,
                " is not a multiple of num_kv_heads ", num_kv_heads);
  TESSERA_CHECK(head_dim > 0 && head_dim % 2 == 0, where, ": head_dim must be positive and even (rotary pairs), got ",
                head_dim);
  TESSERA_CHECK(intermediate_size > 0, where, ": intermediate_size must be positive, got ", intermediate_size);
  TESSERA_CHECK(vocab_size > 0, where, ": vocab_size must be positive, got ", vocab_size);
  TESSERA_CHECK(max_position_embeddings > 0, where, ": max_position_embeddings must be positive, got ",
                max_position_embeddings);
  TESSERA_CHECK(rope_theta > 0.0f, where, ": rope_theta must be positive, got ", rope_theta);
  TESSERA_CHECK(rms_norm_eps > 0.0f, where, ": rms_norm_eps must be positive, got ", rms_norm_eps);
  if (rope_scaling.type != RopeScalingType::kNone) {
    TESSERA_CHECK(rope_scaling.factor > 0.0f, where, ": rope scaling factor must be positive, got ",
                  rope_scaling.factor);
  }
  if (rope_scaling.type == RopeScalingType::kLlama3) {
    TESSERA_CHECK(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor, where,
                  ": llama3 rope scaling needs high_freq_factor > low_freq_factor, got ",
                  rope_scaling.high_freq_factor, " and ", rope_scaling.low_freq_factor);
    TESSERA_CHECK(rope_scaling.original_max_position_embeddings > 0, where,
                  ": llama3 rope scaling needs a positive original_max_position_embeddings");
  }
  if (bos_token_id) {
    TESSERA_CHECK(*bos_token_id >= 0 && *bos_token_id < vocab_size, where, ": bos_token_id ", *bos_token_id,
                  " outside the vocabulary of ", vocab_size);
  }
  for (int eos : eos_token_ids) {
    TESSERA_CHECK(eos >= 0 && eos < vocab_size, where, ": eos token id ", eos, " outside the vocabulary of ",
                  vocab_size);
  }
}

int64_t ModelConfig::parameter_count() const {
  // Checked arithmetic: a config read from a hostile file may hold sizes whose products overflow int64.
  auto mul = [](int64_t a, int64_t b) {
    int64_t out = 0;
    TESSERA_CHECK(!__builtin_mul_overflow(a, b, &out), "model config: parameter count overflows int64");
    return out;
  };
  auto add = [](int64_t a, int64_t b) {
    int64_t out = 0;
    TESSERA_CHECK(!__builtin_add_overflow(a, b, &out), "model config: parameter count overflows int64");
    return out;
  };
  const int64_t hidden = hidden_size;
  const int64_t q_width = int64_t{num_heads} * head_dim;
  const int64_t kv_width = int64_t{num_kv_heads} * head_dim;
  const int64_t qkv_width = add(q_width, mul(2, kv_width));
  int64_t per_layer = mul(2, hidden);                             // attention and FFN norms
  per_layer = add(per_layer, mul(hidden, qkv_width));             // Q, K, V
  if (attention_qkv_bias) per_layer = add(per_layer, qkv_width);
  per_layer = add(per_layer, mul(q_width, hidden));               // attention output
  per_layer = add(per_layer, mul(mul(3, hidden), intermediate_size));  // gate, up, down
  const int64_t embedding = mul(vocab_size, hidden);
  const int64_t embeddings = tie_word_embeddings ? embedding : mul(2, embedding);
  return add(add(embeddings, mul(per_layer, num_layers)), hidden);  // + final norm
}

}  // namespace tessera::runtime
