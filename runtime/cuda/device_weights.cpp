#include "runtime/cuda/device_weights.h"

#include "kernels/base/half.h"
#include "kernels/cpu/parallel_for.h"
#include "runtime/model/stage_weights.h"

namespace tessera::runtime::cuda {
namespace {

namespace k = kernels::cpu;

// f32 host values rounded to bf16 (round to nearest even) and uploaded into a new device array. Synchronous, so
// the host buffer can be freed (and the next layer read) as soon as it returns.
Bf16Array upload_bf16(const float* values, int64_t count, CachingDevicePool& pool, cudaStream_t stream) {
  Bf16Array out(pool, count);
  if (count == 0) return out;
  std::vector<bf16> host(static_cast<size_t>(count));
  k::parallel_for(count, int64_t{1} << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) host[i] = float_to_bf16(values[i]);
  });
  static_assert(sizeof(bf16) == sizeof(__nv_bfloat16), "tessera::bf16 and __nv_bfloat16 are the same 16 bits");
  out.upload(reinterpret_cast<const __nv_bfloat16*>(host.data()), count, stream);
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream));
  return out;
}

Bf16Array upload_tensor(const Tensor& t, CachingDevicePool& pool, cudaStream_t stream) {
  return t.empty() ? Bf16Array() : upload_bf16(t.data<float>(), t.numel(), pool, stream);
}

Bf16Array upload_matrix(const WeightMatrix& m, CachingDevicePool& pool, cudaStream_t stream) {
  return m.empty() ? Bf16Array() : upload_bf16(m.f32(), m.rows() * m.cols(), pool, stream);
}

}  // namespace

size_t DeviceStageWeights::bytes() const {
  size_t total = embedding.bytes() + output_norm.bytes() + lm_head.bytes();
  for (const DeviceLayerWeights& w : layer) {
    total += w.attn_norm.bytes() + w.qkv.bytes() + w.qkv_bias.bytes() + w.attn_output.bytes() + w.ffn_norm.bytes() +
             w.gate_up.bytes() + w.down.bytes();
  }
  return total;
}

uint64_t device_weight_bytes(const ModelConfig& c, const TensorParallelShard& s, parallel::LayerRange layers,
                             bool first_stage, bool last_stage) {
  const uint64_t hidden = c.hidden_size, hd = c.head_dim;
  const uint64_t qkv_rows = (static_cast<uint64_t>(s.local_q_heads()) + 2 * s.local_kv_heads()) * hd;
  const uint64_t q_cols = static_cast<uint64_t>(s.local_q_heads()) * hd, ffn = s.local_ffn();
  uint64_t per_layer = 2 * hidden + qkv_rows * hidden + hidden * q_cols + 3 * ffn * hidden;
  if (c.attention_qkv_bias) per_layer += qkv_rows;
  uint64_t elements = per_layer * static_cast<uint64_t>(layers.size());
  const uint64_t vocab_rows = static_cast<uint64_t>(s.local_vocab()) * hidden;
  if (first_stage) elements += vocab_rows;
  if (last_stage) elements += hidden + (c.tie_word_embeddings && first_stage ? 0 : vocab_rows);
  return elements * sizeof(__nv_bfloat16);
}

DeviceStageWeights upload_stage_weights(const WeightSource& source, const ModelConfig& config,
                                        const TensorParallelShard& shard, parallel::LayerRange layers,
                                        bool first_stage, bool last_stage, CachingDevicePool& pool,
                                        cudaStream_t stream) {
  DeviceStageWeights out;
  for (int layer = layers.begin; layer < layers.end; ++layer) {
    const LayerWeights w = load_layer_weights(source, config, shard, layer, k::WeightFormat::kF32);
    DeviceLayerWeights d;
    d.attn_norm = upload_tensor(w.attn_norm, pool, stream);
    d.qkv = upload_matrix(w.qkv, pool, stream);
    d.qkv_bias = upload_tensor(w.qkv_bias, pool, stream);
    d.attn_output = upload_matrix(w.attn_output, pool, stream);
    d.ffn_norm = upload_tensor(w.ffn_norm, pool, stream);
    d.gate_up = upload_matrix(w.gate_up, pool, stream);
    d.down = upload_matrix(w.down, pool, stream);
    out.layer.push_back(std::move(d));
  }
  if (!first_stage && !last_stage) return out;
  // The embedding, final norm and LM head (no layers): the CPU loader's vocab-parallel slicing, reused. A tied LM
  // head on the rank that holds the embedding is the embedding itself: loaded once, uploaded once.
  const bool share = config.tie_word_embeddings && first_stage && last_stage;
  const StageWeights ends = load_stage_weights(source, config, shard, parallel::LayerRange{layers.end, layers.end},
                                               first_stage, last_stage && !share, k::WeightFormat::kF32);
  if (first_stage) out.embedding = upload_tensor(ends.embedding, pool, stream);
  if (last_stage) {
    if (share) {
      // load_stage_weights skipped the final norm together with the head (last_stage false): read it here.
      const WeightId norm_id{WeightKind::kOutputNorm};
      const std::vector<int64_t> shape = source.info(norm_id).shape;
      TESSERA_CHECK(shape == std::vector<int64_t>{config.hidden_size}, source.describe(), ": ", to_string(norm_id),
                    " has ", shape.size(), " dimensions / not the hidden size ", config.hidden_size);
      std::vector<float> norm(static_cast<size_t>(config.hidden_size));
      source.read_rows(norm_id, 0, config.hidden_size, norm.data());
      out.output_norm = upload_bf16(norm.data(), config.hidden_size, pool, stream);
      out.lm_head_is_embedding = true;
    } else {
      out.output_norm = upload_tensor(ends.output_norm, pool, stream);
      out.lm_head = upload_matrix(ends.lm_head, pool, stream);
    }
  }
  return out;
}

}  // namespace tessera::runtime::cuda
