#include "runtime/model/decoder_stage.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/base/error.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/parallel_for.h"

namespace tessera::runtime {

namespace k = kernels::cpu;

k::RopeConfig rope_config_of(const ModelConfig& c) {
  k::RopeConfig r;
  r.head_dim = c.head_dim;
  r.theta = c.rope_theta;
  switch (c.rope_scaling.type) {
    case RopeScalingType::kNone: r.scaling = k::RopeScalingKind::kNone; break;
    case RopeScalingType::kLinear: r.scaling = k::RopeScalingKind::kLinear; break;
    case RopeScalingType::kLlama3: r.scaling = k::RopeScalingKind::kLlama3; break;
  }
  r.factor = c.rope_scaling.factor;
  r.low_freq_factor = c.rope_scaling.low_freq_factor;
  r.high_freq_factor = c.rope_scaling.high_freq_factor;
  r.original_max_position_embeddings = c.rope_scaling.original_max_position_embeddings;
  return r;
}

DecoderStage::DecoderStage(const ModelConfig& config, const TensorParallelShard& shard, StageWeights weights,
                           KvCacheShape cache_shape, parallel::HostCommunicator& tp)
    : config_(config),
      shard_(shard),
      weights_(std::move(weights)),
      cache_(cache_shape),
      tp_(tp),
      rope_(rope_config_of(config)) {
  TESSERA_CHECK(tp.size() == shard.tp, "TP group ", tp.name(), " has ", tp.size(), " members but the shard expects tp=",
                shard.tp);
  TESSERA_CHECK(cache_shape.num_layers == weights_.layers.size(), "KV cache covers ", cache_shape.num_layers,
                " layers but the stage holds ", weights_.layers.size());
}

void DecoderStage::ensure_scratch(int64_t tokens) {
  if (tokens <= scratch_tokens_) return;
  const int64_t hd = config_.head_dim;
  const int64_t qkv_width = (shard_.local_q_heads() + 2 * shard_.local_kv_heads()) * hd;
  normed_ = Tensor(DType::F32, {tokens, config_.hidden_size});
  qkv_ = Tensor(DType::F32, {tokens, qkv_width});
  attn_ = Tensor(DType::F32, {tokens, shard_.local_q_heads() * hd});
  projected_ = Tensor(DType::F32, {tokens, config_.hidden_size});
  gate_up_ = Tensor(DType::F32, {tokens, 2 * shard_.local_ffn()});
  act_ = Tensor(DType::F32, {tokens, shard_.local_ffn()});
  scratch_tokens_ = tokens;
}

void DecoderStage::embed(const ForwardBatch& batch, Tensor& hidden) {
  TESSERA_CHECK(!weights_.embedding.empty(), "embed() called on a rank that does not hold the embedding");
  const int64_t tokens = batch.num_tokens();
  hidden = Tensor(DType::F32, {tokens, config_.hidden_size});
  k::embedding_lookup(batch.tokens.data(), tokens, weights_.embedding.data<float>(), shard_.vocab_begin,
                      shard_.vocab_end, config_.vocab_size, config_.hidden_size, hidden.data<float>());
  if (tp_.size() > 1) tp_.all_reduce_sum(parallel::host_span(hidden.span<float>()));
}

void DecoderStage::run_layers(const ForwardBatch& batch, Tensor& hidden) {
  const int64_t tokens = batch.num_tokens();
  TESSERA_CHECK(hidden.shape() == (Shape{tokens, config_.hidden_size}), "hidden states of shape ",
                hidden.shape().to_string(), " for a batch of ", tokens, " tokens");
  ensure_scratch(tokens);
  for (int l = 0; l < weights_.layers.size(); ++l) {
    attention_block(batch, l, hidden);
    ffn_block(l, hidden, tokens);
  }
}

void DecoderStage::attention_block(const ForwardBatch& batch, int local_layer, Tensor& hidden) {
  const LayerWeights& w = weights_.layer[local_layer];
  const int64_t tokens = batch.num_tokens(), dim = config_.hidden_size, hd = config_.head_dim;
  const int64_t q_heads = shard_.local_q_heads(), kv_heads = shard_.local_kv_heads();
  const int64_t qkv_width = (q_heads + 2 * kv_heads) * hd;
  float* normed = normed_.data<float>();
  float* qkv = qkv_.data<float>();
  float* attn = attn_.data<float>();

  k::rms_norm(hidden.data<float>(), w.attn_norm.data<float>(), normed, tokens, dim, config_.rms_norm_eps);
  w.qkv.matmul_transposed(normed, qkv, tokens, w.qkv_bias.empty() ? nullptr : w.qkv_bias.data<float>());
  float* q = qkv;
  float* key = qkv + q_heads * hd;
  float* value = qkv + (q_heads + kv_heads) * hd;
  k::apply_rope(q, q_heads, qkv_width, key, kv_heads, qkv_width, batch.positions.data(), tokens, rope_,
                k::RopeLayout::kNeox);

  const k::KvCacheView cache = cache_.layer(local_layer);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Sequences are independent (own KV blocks, own rows), and so are a sequence's query heads: the keys and values of
  // the step are stored first, then the (sequence, head) pairs spread over the kernel threads, so that a batch of one
  // sequence uses them too. Each pair's arithmetic is the same on whichever thread runs it.
  const auto sequences = static_cast<int64_t>(batch.sequences.size());
  for (const BatchSequence& s : batch.sequences) {
    const int64_t row = s.token_begin;
    k::write_kv(cache, s.block_table.data(), static_cast<int64_t>(s.block_table.size()), s.start_position,
                s.token_count, key + row * qkv_width, qkv_width, value + row * qkv_width, qkv_width);
  }
  k::parallel_for(sequences * q_heads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end;) {
      const int64_t i = item / q_heads, head_begin = item % q_heads;
      const int64_t head_end = std::min(q_heads, head_begin + (end - item));
      const BatchSequence& s = batch.sequences[static_cast<size_t>(i)];
      const int64_t row = s.token_begin;
      k::attention_heads(cache, s.block_table.data(), static_cast<int64_t>(s.block_table.size()), s.start_position,
                         s.token_count, q + row * qkv_width, qkv_width, q_heads, head_begin, head_end, scale,
                         attn + row * q_heads * hd, q_heads * hd);
      item += head_end - head_begin;
    }
  });
  // Row-parallel output projection: partial sums over this rank's heads, completed by the all-reduce.
  float* projected = projected_.data<float>();
  w.attn_output.matmul_transposed(attn, projected, tokens);
  if (tp_.size() > 1) tp_.all_reduce_sum(parallel::host_span(projected, static_cast<size_t>(tokens * dim)));
  k::add_inplace(hidden.data<float>(), projected, tokens * dim);
}

void DecoderStage::ffn_block(int local_layer, Tensor& hidden, int64_t tokens) {
  const LayerWeights& w = weights_.layer[local_layer];
  const int64_t dim = config_.hidden_size, ffn = shard_.local_ffn();
  float* normed = normed_.data<float>();
  k::rms_norm(hidden.data<float>(), w.ffn_norm.data<float>(), normed, tokens, dim, config_.rms_norm_eps);
  w.gate_up.matmul_transposed(normed, gate_up_.data<float>(), tokens);
  k::silu_and_mul(gate_up_.data<float>(), act_.data<float>(), tokens, ffn);
  float* projected = projected_.data<float>();
  w.down.matmul_transposed(act_.data<float>(), projected, tokens);
  if (tp_.size() > 1) tp_.all_reduce_sum(parallel::host_span(projected, static_cast<size_t>(tokens * dim)));
  k::add_inplace(hidden.data<float>(), projected, tokens * dim);
}

void DecoderStage::logits(const Tensor& hidden, const std::vector<int64_t>& rows, Tensor& out) {
  TESSERA_CHECK(!weights_.lm_head.empty(), "logits() called on a rank that does not hold the LM head");
  const int64_t dim = config_.hidden_size, n = static_cast<int64_t>(rows.size());
  // The buffers here are rewritten whole each step, and the logits ones are n x vocab (3 MB at 16 rows of a 49k
  // vocabulary), so they are reused across steps rather than allocated, zeroed and freed at each one.
  logit_rows_.resize(DType::F32, {n, dim});
  for (int64_t i = 0; i < n; ++i) {
    TESSERA_CHECK(rows[i] >= 0 && rows[i] < hidden.shape()[0], "logits row ", rows[i], " outside the batch");
    std::memcpy(logit_rows_.data<float>() + i * dim, hidden.data<float>() + rows[i] * dim, dim * sizeof(float));
  }
  k::rms_norm(logit_rows_.data<float>(), weights_.output_norm.data<float>(), logit_rows_.data<float>(), n, dim,
              config_.rms_norm_eps);
  const int64_t stride = shard_.vocab_stride, local = shard_.local_vocab(), vocab = config_.vocab_size;
  out.resize(DType::F32, {n, vocab});
  if (tp_.size() == 1) {  // this rank holds the whole vocabulary: the LM head writes the logits in place
    TESSERA_CHECK(local == vocab, "a single-rank LM head holds ", local, " of ", vocab, " vocabulary rows");
    weights_.lm_head.matmul_transposed(logit_rows_.data<float>(), out.data<float>(), n);
    if (n > kRetainedLogitRows) logit_rows_ = Tensor();
    return;
  }
  // Vocab-parallel LM head: each member computes its rows of the vocabulary, padded to the common stride so that
  // the all-gather has equal parts, then the padding is dropped.
  local_logits_.resize(DType::F32, {n, stride});
  if (local > 0) {
    partial_logits_.resize(DType::F32, {n, local});
    weights_.lm_head.matmul_transposed(logit_rows_.data<float>(), partial_logits_.data<float>(), n);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(local_logits_.data<float>() + i * stride, partial_logits_.data<float>() + i * local,
                  local * sizeof(float));
    }
  }
  gathered_logits_.resize(DType::F32, {tp_.size(), n, stride});
  tp_.all_gather(parallel::host_span(local_logits_.span<float>()), parallel::host_span(gathered_logits_.span<float>()));
  for (int r = 0; r < tp_.size(); ++r) {
    const int64_t begin = std::min<int64_t>(vocab, r * stride);
    const int64_t count = std::min<int64_t>(vocab, begin + stride) - begin;
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(out.data<float>() + i * vocab + begin, gathered_logits_.data<float>() + (r * n + i) * stride,
                  count * sizeof(float));
    }
  }
  if (n > kRetainedLogitRows) {
    for (Tensor* t : {&logit_rows_, &partial_logits_, &local_logits_, &gathered_logits_}) *t = Tensor();
  }
}

}  // namespace tessera::runtime
