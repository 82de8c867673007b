#pragma once
// Compares two ModelConfigs field by field, for tests that state the whole config a loader must produce
// (GGUF metadata, Hugging Face config.json): every field is checked, and a failure lists each field that differs.
#include <gtest/gtest.h>

#include <sstream>

#include "runtime/model/model_config.h"

namespace tessera::testing {

// Every field of ModelConfig, compared exactly (loaders copy values, they compute none). A field added to
// ModelConfig belongs here too.
inline ::testing::AssertionResult same_config(const runtime::ModelConfig& got, const runtime::ModelConfig& want) {
  std::ostringstream diff;
  auto field = [&diff](const char* name, const auto& g, const auto& w) {
    if (!(g == w)) {
      diff << "\n  " << name << ": got " << ::testing::PrintToString(g) << ", want " << ::testing::PrintToString(w);
    }
  };
  field("architecture", got.architecture, want.architecture);
  field("name", got.name, want.name);
  field("num_layers", got.num_layers, want.num_layers);
  field("hidden_size", got.hidden_size, want.hidden_size);
  field("num_heads", got.num_heads, want.num_heads);
  field("num_kv_heads", got.num_kv_heads, want.num_kv_heads);
  field("head_dim", got.head_dim, want.head_dim);
  field("intermediate_size", got.intermediate_size, want.intermediate_size);
  field("vocab_size", got.vocab_size, want.vocab_size);
  field("max_position_embeddings", got.max_position_embeddings, want.max_position_embeddings);
  field("rope_theta", got.rope_theta, want.rope_theta);
  field("rope_scaling.type", static_cast<int>(got.rope_scaling.type), static_cast<int>(want.rope_scaling.type));
  field("rope_scaling.factor", got.rope_scaling.factor, want.rope_scaling.factor);
  field("rope_scaling.low_freq_factor", got.rope_scaling.low_freq_factor, want.rope_scaling.low_freq_factor);
  field("rope_scaling.high_freq_factor", got.rope_scaling.high_freq_factor, want.rope_scaling.high_freq_factor);
  field("rope_scaling.original_max_position_embeddings", got.rope_scaling.original_max_position_embeddings,
        want.rope_scaling.original_max_position_embeddings);
  field("rms_norm_eps", got.rms_norm_eps, want.rms_norm_eps);
  field("tie_word_embeddings", got.tie_word_embeddings, want.tie_word_embeddings);
  field("attention_qkv_bias", got.attention_qkv_bias, want.attention_qkv_bias);
  field("bos_token_id", got.bos_token_id, want.bos_token_id);
  field("eos_token_ids", got.eos_token_ids, want.eos_token_ids);
  const std::string differences = diff.str();
  if (differences.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "configs differ in" << differences;
}

}  // namespace tessera::testing
