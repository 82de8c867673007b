#include "runtime/cuda/cuda_decoder_stage.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "kernels/cuda/activation.h"
#include "kernels/cuda/convert.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/norm.h"
#include "runtime/cuda/stage_kernels.h"
#include "runtime/model/decoder_stage.h"

namespace tessera::runtime::cuda {
namespace {

namespace kc = kernels::cuda;
using kc::GemmType;

constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;  // CublasLtGemm's default
constexpr int64_t kAttentionPartition = 256;               // keys per split-K partition of the decode kernel

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The graph sizes a stage can pad to: a padded batch needs that many rows and decode sequences.
std::vector<int> usable_graph_sizes(const CudaStageLimits& limits) {
  std::vector<int> sizes;
  for (int s : limits.graph_batch_sizes) {
    if (s >= 1 && s <= limits.max_step_tokens && s <= limits.max_sequences) sizes.push_back(s);
  }
  return sizes;
}

bool pure_decode(const ForwardBatch& batch) {
  if (batch.sequences.empty()) return false;
  return std::all_of(batch.sequences.begin(), batch.sequences.end(),
                     [](const BatchSequence& s) { return s.token_count == 1; });
}

}  // namespace

uint64_t CudaDecoderStage::activation_bytes(const ModelConfig& c, const TensorParallelShard& s,
                                            const CudaStageLimits& limits) {
  const uint64_t T = static_cast<uint64_t>(limits.max_step_tokens), S = static_cast<uint64_t>(limits.max_sequences);
  const uint64_t hidden = c.hidden_size, hd = c.head_dim;
  const uint64_t q = static_cast<uint64_t>(s.local_q_heads()) * hd;
  const uint64_t qkv = q + 2 * static_cast<uint64_t>(s.local_kv_heads()) * hd, ffn = s.local_ffn();
  const uint64_t tp = static_cast<uint64_t>(s.tp), stride = static_cast<uint64_t>(s.vocab_stride);
  const uint64_t max_blocks = static_cast<uint64_t>(ceil_div(limits.max_sequence_length, limits.block_size));
  const uint64_t partitions = static_cast<uint64_t>(ceil_div(limits.max_sequence_length, kAttentionPartition));
  uint64_t bytes = T * (2 * hidden + qkv + q + 3 * ffn) * 2 + T * hidden * 4;  // bf16 activations, f32 transfer
  bytes += S * stride * 4 * (tp > 1 ? 2 + tp : 1);                               // logits
  bytes += T * 3 * 4 + S * (2 * max_blocks + 1) * 4;                             // step metadata
  bytes += S * q / hd * partitions * (hd + 2) * 4;                               // split-K decode partials
  bytes += 2 * static_cast<uint64_t>(limits.max_sequence_length) * hd * 4 * 2;  // RoPE table (grows x2)
  bytes += kGemmWorkspaceBytes;
  bytes += 24 * (uint64_t{2} << 20);  // the pool rounds each of ~24 arrays up to 2 MiB
  return bytes;
}

CudaDecoderStage::CudaDecoderStage(const ModelConfig& config, const TensorParallelShard& shard, CudaStageLimits limits,
                                   std::unique_ptr<CachingDevicePool> pool, CudaStream device_stream,
                                   DeviceStageWeights weights, int64_t kv_blocks,
                                   std::unique_ptr<parallel::DeviceCommunicator> tp_device)
    : config_(config),
      shard_(shard),
      limits_(std::move(limits)),
      max_blocks_per_seq_(ceil_div(limits_.max_sequence_length, limits_.block_size)),
      pool_(std::move(pool)),
      stream_(std::move(device_stream)),
      tp_(std::move(tp_device)),
      weights_(std::move(weights)),
      gemm_(kGemmWorkspaceBytes),
      rope_(rope_config_of(config), limits_.max_sequence_length),
      graphs_(usable_graph_sizes(limits_)) {
  TESSERA_CHECK((tp_ != nullptr) == (shard_.tp > 1), "CUDA stage: tp=", shard_.tp, " needs a device communicator ",
                "exactly when tp > 1");
  TESSERA_CHECK(tp_ == nullptr || tp_->size() == shard_.tp, "CUDA stage: TP communicator ", tp_->name(), " has ",
                tp_->size(), " members, the shard expects ", shard_.tp);
  TESSERA_CHECK(kv_blocks >= 1 && kv_blocks <= INT32_MAX, "CUDA stage: bad KV block count ", kv_blocks);
  TESSERA_CHECK(limits_.max_step_tokens >= limits_.max_sequences && limits_.max_sequences >= 1,
                "CUDA stage: max_step_tokens ", limits_.max_step_tokens, " below max_sequences ", limits_.max_sequences);
  const cudaStream_t s = stream();
  const int64_t hidden = config_.hidden_size, hd = config_.head_dim;
  const int64_t kv_heads = shard_.local_kv_heads(), q = int64_t{shard_.local_q_heads()} * hd;
  const int64_t qkv = q + 2 * kv_heads * hd, ffn = shard_.local_ffn();

  // The paged KV cache, zeroed: padding rows of a graph step read block 0, which must hold finite values.
  const int64_t layer_elements = kv_blocks * limits_.block_size * kv_heads * hd;
  for (size_t l = 0; l < weights_.layer.size(); ++l) {
    DeviceArray<__nv_bfloat16> k(*pool_, layer_elements), v(*pool_, layer_elements);
    k.zero(s);
    v.zero(s);
    kv_.push_back({k.get(), v.get(), kv_blocks, limits_.block_size, kv_heads, hd});
    kv_bytes_ += k.bytes() + v.bytes();
    kv_memory_.push_back(std::move(k));
    kv_memory_.push_back(std::move(v));
  }

  const int64_t T = limits_.max_step_tokens, S = limits_.max_sequences;
  residual_ = DeviceArray<__nv_bfloat16>(*pool_, T * hidden);
  normed_ = DeviceArray<__nv_bfloat16>(*pool_, T * hidden);
  qkv_ = DeviceArray<__nv_bfloat16>(*pool_, T * qkv);
  attn_ = DeviceArray<__nv_bfloat16>(*pool_, T * q);
  gate_up_ = DeviceArray<__nv_bfloat16>(*pool_, T * 2 * ffn);
  act_ = DeviceArray<__nv_bfloat16>(*pool_, T * ffn);
  hidden_f32_ = DeviceArray<float>(*pool_, T * hidden);
  for (auto* a : {&residual_, &normed_, &qkv_, &attn_, &gate_up_, &act_}) a->zero(s);
  const int64_t stride = shard_.vocab_stride;
  local_logits_ = DeviceArray<float>(*pool_, S * stride);
  if (tp_) {
    padded_logits_ = DeviceArray<float>(*pool_, S * stride);
    gathered_logits_ = DeviceArray<float>(*pool_, int64_t{shard_.tp} * S * stride);
  }
  ids_ = DeviceArray<int32_t>(*pool_, T);
  positions_ = DeviceArray<int32_t>(*pool_, T);
  slots_ = DeviceArray<int32_t>(*pool_, T);
  decode_tables_ = DeviceArray<int32_t>(*pool_, S * max_blocks_per_seq_);
  context_lens_ = DeviceArray<int32_t>(*pool_, S);
  prefill_tables_ = DeviceArray<int32_t>(*pool_, S * max_blocks_per_seq_);
  bad_token_ = DeviceArray<int32_t>(*pool_, 1);
  graphs_enabled_ = shard_.tp == 1 && graphs_.padded_size(1) > 0;
  stream_.synchronize();
}

CudaDecoderStage::~CudaDecoderStage() {
  // Everything below is freed while the stream may still run work that uses it: wait first.
  if (stream_.get() != nullptr) cudaStreamSynchronize(stream_.get());
}

void CudaDecoderStage::all_reduce(__nv_bfloat16* data, int64_t count) {
  static_assert(sizeof(bf16) == sizeof(__nv_bfloat16), "tessera::bf16 and __nv_bfloat16 are the same 16 bits");
  tp_->all_reduce_sum(parallel::device_span(reinterpret_cast<bf16*>(data), static_cast<size_t>(count)));
}

void CudaDecoderStage::upload_hidden(const Tensor& hidden, int64_t rows) {
  const int64_t dim = config_.hidden_size;
  TESSERA_CHECK(hidden.shape() == (Shape{rows, dim}), "CUDA stage: hidden states of shape ",
                hidden.shape().to_string(), " for ", rows, " rows");
  hidden_f32_.upload(hidden.data<float>(), rows * dim, stream());
  kc::f32_to_bf16(hidden_f32_.get(), residual_.get(), static_cast<size_t>(rows * dim), stream());
}

void CudaDecoderStage::download_hidden(Tensor& hidden, int64_t rows) {
  const int64_t dim = config_.hidden_size;
  if (hidden.shape() != (Shape{rows, dim})) hidden = Tensor(DType::F32, {rows, dim});
  kc::bf16_to_f32(residual_.get(), hidden_f32_.get(), static_cast<size_t>(rows * dim), stream());
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(hidden.data<float>(), hidden_f32_.get(), hidden.nbytes(), cudaMemcpyDeviceToHost,
                                     stream()));
  stream_.synchronize();
}

void CudaDecoderStage::embed(const ForwardBatch& batch, Tensor& hidden) {
  TESSERA_CHECK(!weights_.embedding.empty(), "embed() called on a rank that does not hold the embedding");
  const int64_t tokens = batch.num_tokens();
  TESSERA_CHECK(tokens <= limits_.max_step_tokens, "CUDA stage: a step of ", tokens, " tokens exceeds max_step_tokens ",
                limits_.max_step_tokens);
  ids_.upload(batch.tokens.data(), tokens, stream());
  const int32_t none = INT32_MAX;
  bad_token_.upload(&none, 1, stream());
  kc::embedding_lookup(ids_.get(), tokens, weights_.embedding.get(), shard_.vocab_begin, shard_.vocab_end,
                       config_.vocab_size, config_.hidden_size, residual_.get(), stream(), bad_token_.get());
  if (tp_) all_reduce(residual_.get(), tokens * config_.hidden_size);
  download_hidden(hidden, tokens);
  int32_t bad = INT32_MAX;
  TESSERA_CUDA_CHECK(cudaMemcpy(&bad, bad_token_.get(), sizeof bad, cudaMemcpyDeviceToHost));
  TESSERA_CHECK(bad == INT32_MAX, "token id ", bad >= 0 && bad < tokens ? batch.tokens[bad] : -1, " at row ", bad,
                " of the step is outside the vocabulary of ", config_.vocab_size);
}

CudaDecoderStage::StepLayout CudaDecoderStage::upload_metadata(const ForwardBatch& batch, int64_t graph_rows) {
  const int64_t tokens = batch.num_tokens(), bs = limits_.block_size, mb = max_blocks_per_seq_;
  const auto num_seqs = static_cast<int64_t>(batch.sequences.size());
  StepLayout layout;
  layout.rows = graph_rows > 0 ? graph_rows : tokens;
  TESSERA_CHECK(layout.rows <= limits_.max_step_tokens && num_seqs <= limits_.max_sequences, "CUDA stage: a step of ",
                tokens, " tokens in ", num_seqs, " sequences exceeds the limits (", limits_.max_step_tokens, " tokens, ",
                limits_.max_sequences, " sequences)");
  host_ids_.assign(static_cast<size_t>(layout.rows), 0);
  host_positions_.assign(static_cast<size_t>(layout.rows), 0);
  host_slots_.assign(static_cast<size_t>(layout.rows), -1);  // padding rows write no KV
  std::copy(batch.tokens.begin(), batch.tokens.end(), host_ids_.begin());
  std::copy(batch.positions.begin(), batch.positions.end(), host_positions_.begin());

  int64_t decode = 0;
  while (decode < num_seqs && batch.sequences[decode].token_count == 1 && batch.sequences[decode].token_begin == decode) {
    ++decode;
  }
  // A graph step is pure decode, padded: one-token contexts over block 0 (finite, zeroed at allocation).
  layout.decode_seqs = graph_rows > 0 ? graph_rows : decode;
  host_decode_tables_.assign(static_cast<size_t>(layout.decode_seqs * mb), 0);
  host_context_lens_.assign(static_cast<size_t>(layout.decode_seqs), 1);
  host_prefill_tables_.clear();
  for (int64_t i = 0; i < num_seqs; ++i) {
    const BatchSequence& s = batch.sequences[i];
    const auto table_len = static_cast<int64_t>(s.block_table.size());
    TESSERA_CHECK(table_len <= mb, "CUDA stage: a block table of ", table_len, " blocks exceeds the ", mb,
                  " of a sequence of at most ", limits_.max_sequence_length, " tokens");
    for (int64_t t = 0; t < s.token_count; ++t) {
      const int64_t position = s.start_position + t;
      TESSERA_CHECK(position / bs < table_len, "CUDA stage: position ", position, " beyond the sequence's ", table_len,
                    " KV blocks");
      const int32_t block = s.block_table[position / bs];
      TESSERA_CHECK(block >= 0 && block < kv_.front().num_blocks, "CUDA stage: KV block id ", block, " outside [0, ",
                    kv_.front().num_blocks, ")");
      host_slots_[s.token_begin + t] = static_cast<int32_t>(block * bs + position % bs);
    }
    const int64_t last = s.start_position + s.token_count - 1;
    TESSERA_CHECK(last < limits_.max_sequence_length, "CUDA stage: position ", last, " beyond the maximum sequence ",
                  "length ", limits_.max_sequence_length);
    layout.max_position = std::max(layout.max_position, last);
    if (i < decode) {
      std::copy(s.block_table.begin(), s.block_table.end(), host_decode_tables_.begin() + i * mb);
      host_context_lens_[i] = s.start_position + 1;
      layout.max_context = std::max<int64_t>(layout.max_context, s.start_position + 1);
    } else {
      layout.prefills.push_back({s.token_begin, s.token_count, s.start_position,
                                 static_cast<int64_t>(host_prefill_tables_.size()), table_len});
      host_prefill_tables_.insert(host_prefill_tables_.end(), s.block_table.begin(), s.block_table.end());
    }
  }
  if (graph_rows > 0) {  // bounds baked into the graph: every step of this size must fit them
    layout.max_context = limits_.max_sequence_length;
    layout.max_position = limits_.max_sequence_length - 1;
  }
  const cudaStream_t s = stream();
  ids_.upload(host_ids_.data(), layout.rows, s);
  positions_.upload(host_positions_.data(), layout.rows, s);
  slots_.upload(host_slots_.data(), layout.rows, s);
  decode_tables_.upload(host_decode_tables_.data(), static_cast<int64_t>(host_decode_tables_.size()), s);
  context_lens_.upload(host_context_lens_.data(), layout.decode_seqs, s);
  prefill_tables_.upload(host_prefill_tables_.data(), static_cast<int64_t>(host_prefill_tables_.size()), s);
  return layout;
}

void CudaDecoderStage::run_layers(const ForwardBatch& batch, Tensor& hidden) {
  const int64_t tokens = batch.num_tokens();
  const int64_t graph_rows = graphs_enabled_ && pure_decode(batch) ? graphs_.padded_size(static_cast<int>(tokens)) : 0;
  const StepLayout layout = upload_metadata(batch, graph_rows);
  upload_hidden(hidden, tokens);
  if (graph_rows > 0) {
    graphs_.run(static_cast<int>(graph_rows), stream(), [&] { enqueue_layers(layout); });
  } else {
    enqueue_layers(layout);
  }
  download_hidden(hidden, tokens);
}

void CudaDecoderStage::project_into_residual(const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t rows,
                                             int64_t k) {
  gemm_.matmul_transposed(x, w, residual_.get(), rows, config_.hidden_size, k, GemmType::kBF16, GemmType::kBF16,
                          stream(), /*accumulate=*/shard_.tp_rank == 0);
  if (tp_) all_reduce(residual_.get(), rows * config_.hidden_size);
}

void CudaDecoderStage::attention(int local_layer, const StepLayout& layout) {
  const int64_t hd = config_.head_dim, q_heads = shard_.local_q_heads();
  const int64_t qkv_width = (q_heads + 2 * shard_.local_kv_heads()) * hd, out_width = q_heads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const kc::DeviceKvCache<__nv_bfloat16>& cache = kv_[local_layer];
  if (layout.decode_seqs > 0) {
    kc::paged_attention_decode(cache, decode_tables_.get(), max_blocks_per_seq_, context_lens_.get(),
                               layout.max_context, layout.decode_seqs, qkv_.get(), qkv_width, q_heads, scale,
                               attn_.get(), out_width, attention_workspace_, stream());
  }
  for (const PrefillChunk& p : layout.prefills) {
    kc::attention_prefill(cache, prefill_tables_.get() + p.table_offset, p.table_len, p.start, p.count,
                          qkv_.get() + p.row * qkv_width, qkv_width, q_heads, scale, attn_.get() + p.row * out_width,
                          out_width, stream());
  }
}

void CudaDecoderStage::enqueue_layers(const StepLayout& layout) {
  const int64_t rows = layout.rows, dim = config_.hidden_size, hd = config_.head_dim;
  const int64_t q_heads = shard_.local_q_heads(), kv_heads = shard_.local_kv_heads(), ffn = shard_.local_ffn();
  const int64_t qkv_width = (q_heads + 2 * kv_heads) * hd;
  const float eps = config_.rms_norm_eps;
  const cudaStream_t s = stream();
  for (size_t l = 0; l < weights_.layer.size(); ++l) {
    const DeviceLayerWeights& w = weights_.layer[l];
    kc::rms_norm(residual_.get(), w.attn_norm.get(), normed_.get(), rows, dim, eps, s);
    gemm_.matmul_transposed(normed_.get(), w.qkv.get(), qkv_.get(), rows, qkv_width, dim, GemmType::kBF16,
                            GemmType::kBF16, s);
    if (!w.qkv_bias.empty()) add_bias_rows(qkv_.get(), w.qkv_bias.get(), rows, qkv_width, s);
    __nv_bfloat16* q = qkv_.get();
    __nv_bfloat16* k = q + q_heads * hd;
    __nv_bfloat16* v = k + kv_heads * hd;
    kc::apply_rope(q, q_heads, qkv_width, k, kv_heads, qkv_width, positions_.get(), rows, layout.max_position, rope_,
                   kernels::cpu::RopeLayout::kNeox, s);
    write_kv_slots(kv_[l], slots_.get(), rows, k, qkv_width, v, qkv_width, s);
    attention(static_cast<int>(l), layout);
    project_into_residual(attn_.get(), w.attn_output.get(), rows, q_heads * hd);

    kc::rms_norm(residual_.get(), w.ffn_norm.get(), normed_.get(), rows, dim, eps, s);
    gemm_.matmul_transposed(normed_.get(), w.gate_up.get(), gate_up_.get(), rows, 2 * ffn, dim, GemmType::kBF16,
                            GemmType::kBF16, s);
    kc::silu_and_mul(gate_up_.get(), act_.get(), static_cast<int>(rows), static_cast<int>(ffn), s);
    project_into_residual(act_.get(), w.down.get(), rows, ffn);
  }
}

void CudaDecoderStage::logits(const Tensor& hidden, const std::vector<int64_t>& rows, Tensor& out) {
  TESSERA_CHECK(!weights_.output_norm.empty(), "logits() called on a rank that does not hold the LM head");
  const int64_t dim = config_.hidden_size, n = static_cast<int64_t>(rows.size()), vocab = config_.vocab_size;
  TESSERA_CHECK(n <= limits_.max_sequences, "CUDA stage: logits of ", n, " rows exceed max_sequences ",
                limits_.max_sequences);
  out.resize(DType::F32, {n, vocab});
  if (n == 0) return;
  host_staging_.resize(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i) {
    TESSERA_CHECK(rows[i] >= 0 && rows[i] < hidden.shape()[0], "logits row ", rows[i], " outside the batch");
    std::memcpy(host_staging_.data() + i * dim, hidden.data<float>() + rows[i] * dim, dim * sizeof(float));
  }
  const cudaStream_t s = stream();
  hidden_f32_.upload(host_staging_.data(), n * dim, s);
  kc::f32_to_bf16(hidden_f32_.get(), normed_.get(), static_cast<size_t>(n * dim), s);
  kc::rms_norm(normed_.get(), weights_.output_norm.get(), normed_.get(), n, dim, config_.rms_norm_eps, s);
  // Vocab-parallel LM head, f32 logits: this rank's rows of the vocabulary, padded to the common stride for the
  // all-gather (as the CPU stage does), then the padding dropped on the host.
  const int64_t local = shard_.local_vocab(), stride = shard_.vocab_stride;
  if (local > 0) {
    gemm_.matmul_transposed(normed_.get(), weights_.lm_head_data(), local_logits_.get(), n, local, dim,
                            GemmType::kBF16, GemmType::kF32, s);
  }
  if (!tp_) {
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(out.data<float>(), local_logits_.get(), out.nbytes(), cudaMemcpyDeviceToHost, s));
    stream_.synchronize();
    return;
  }
  const float* send = local_logits_.get();
  if (local != stride) {
    TESSERA_CUDA_CHECK(cudaMemsetAsync(padded_logits_.get(), 0, static_cast<size_t>(n * stride) * sizeof(float), s));
    if (local > 0) {
      TESSERA_CUDA_CHECK(cudaMemcpy2DAsync(padded_logits_.get(), stride * sizeof(float), local_logits_.get(),
                                           local * sizeof(float), local * sizeof(float), static_cast<size_t>(n),
                                           cudaMemcpyDeviceToDevice, s));
    }
    send = padded_logits_.get();
  }
  tp_->all_gather(parallel::device_span(send, static_cast<size_t>(n * stride)),
                  parallel::device_span(gathered_logits_.get(), static_cast<size_t>(shard_.tp * n * stride)));
  host_staging_.resize(static_cast<size_t>(shard_.tp * n * stride));
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(host_staging_.data(), gathered_logits_.get(),
                                     host_staging_.size() * sizeof(float), cudaMemcpyDeviceToHost, s));
  stream_.synchronize();
  for (int r = 0; r < shard_.tp; ++r) {
    const int64_t begin = std::min<int64_t>(vocab, r * stride);
    const int64_t count = std::min<int64_t>(vocab, begin + stride) - begin;
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(out.data<float>() + i * vocab + begin, host_staging_.data() + (r * n + i) * stride,
                  static_cast<size_t>(count) * sizeof(float));
    }
  }
}

}  // namespace tessera::runtime::cuda
