#pragma once
// The CUDA backend's ModelStage: this rank's part of the Llama-family decoder on one GPU, bf16 weights and
// activations with f32 accumulation (kernels/cuda), a paged bf16 KV cache in device memory, TP collectives on a
// device communicator (NCCL, or staged through the host when ranks share a GPU). The ModelStage interface stays
// on the host: hidden states arrive and leave as f32 host tensors (bf16 values widened, so nothing is lost between
// stages), logits leave as f32.
//
// One layer, over the T rows of a step (every sequence's new tokens, flattened):
//   normed = rmsnorm(residual) · attn_norm          qkv = normed · Wqkvᵀ (+ bias)      RoPE on q, k
//   K/V of every row into its slot of the paged cache; attention: single-token sequences through the split-K
//   decode kernel in one launch, prompt chunks through the tiled prefill kernel
//   residual += attn · Woᵀ       normed = rmsnorm(residual) · ffn_norm       act = silu(gate) · up
//   residual += act · Wdownᵀ
// The residual add is fused into the row-parallel GEMMs' epilogue (cuBLASLt accumulate): with tensor parallelism
// tp_rank 0 accumulates its partial product onto the residual, the others write theirs in its place, and the
// all-reduce of that buffer is the new residual: one pass, no separate add or add+norm kernel.
//
// Pure decode steps of up to the largest configured graph batch run as CUDA graphs (decode_graphs.h) when tp == 1;
// with tp > 1 the communicators' blocking collectives cannot be captured, so those steps run eagerly.
#include <cuda_bf16.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/cuda/kv_cache.h"
#include "kernels/cuda/rope.h"
#include "parallel/communicator.h"
#include "runtime/cuda/cuda_stream.h"
#include "runtime/cuda/decode_graphs.h"
#include "runtime/cuda/device_array.h"
#include "runtime/cuda/device_weights.h"
#include "runtime/device/caching_pool.h"
#include "runtime/model/model_stage.h"
#include "runtime/model/tensor_parallel_shard.h"

namespace tessera::runtime::cuda {

struct CudaStageLimits {
  int max_step_tokens = 2048;  // rows of a step: sizes the activation buffers
  int max_sequences = 1;       // sequences of a step: sizes the logits and the decode metadata
  int max_sequence_length = 4096;
  int block_size = 16;
  std::vector<int> graph_batch_sizes;  // empty: no CUDA graphs
};

class CudaDecoderStage final : public ModelStage {
 public:
  // Takes the device resources the builder made (the pool that holds `weights`, the stream they were uploaded
  // on) and allocates the KV cache of `kv_blocks` blocks and the activation buffers from the pool (throws with
  // the numbers when they do not fit). `tp_device` is null when the shard's tp is 1.
  CudaDecoderStage(const ModelConfig& config, const TensorParallelShard& shard, CudaStageLimits limits,
                   std::unique_ptr<CachingDevicePool> pool, CudaStream stream, DeviceStageWeights weights,
                   int64_t kv_blocks, std::unique_ptr<parallel::DeviceCommunicator> tp_device);
  ~CudaDecoderStage() override;
  CudaDecoderStage(const CudaDecoderStage&) = delete;
  CudaDecoderStage& operator=(const CudaDecoderStage&) = delete;

  const ModelConfig& config() const override { return config_; }
  void embed(const ForwardBatch& batch, Tensor& hidden) override;
  void run_layers(const ForwardBatch& batch, Tensor& hidden) override;
  void logits(const Tensor& hidden, const std::vector<int64_t>& rows, Tensor& out) override;

  size_t weight_bytes() const { return weights_.bytes(); }
  size_t kv_cache_bytes() const { return kv_bytes_; }
  size_t graphs_captured() const { return graphs_.captured(); }
  bool graphs_enabled() const { return graphs_enabled_; }

  // Device bytes of the activation buffers, metadata and workspaces these limits need (for the memory plan made
  // before the stage exists).
  static uint64_t activation_bytes(const ModelConfig& config, const TensorParallelShard& shard,
                                   const CudaStageLimits& limits);

 private:
  // Where a step's attention goes. The first `decode_seqs` sequences are single-token sequences in rows
  // 0 .. decode_seqs - 1 (the scheduler puts decodes first): one decode launch. The rest are prefill chunks.
  struct PrefillChunk {
    int64_t row = 0, count = 0, start = 0, table_offset = 0, table_len = 0;
  };
  struct StepLayout {
    int64_t rows = 0;  // rows the kernels run on: the batch's tokens, padded up for a graph
    int64_t decode_seqs = 0;
    int64_t max_context = 0;   // the decode kernel's grid bound
    int64_t max_position = 0;  // RoPE's bound
    std::vector<PrefillChunk> prefills;
  };

  // Uploads ids, positions, KV slots, block tables and context lengths; `graph_rows` > 0 pads a pure-decode batch
  // to that many rows with fixed bounds so that a captured graph fits every step.
  StepLayout upload_metadata(const ForwardBatch& batch, int64_t graph_rows);
  void enqueue_layers(const StepLayout& layout);
  void attention(int local_layer, const StepLayout& layout);
  // residual = residual + x · wᵀ summed over the TP group (see the header comment).
  void project_into_residual(const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t rows, int64_t k);
  void all_reduce(__nv_bfloat16* data, int64_t count);
  void upload_hidden(const Tensor& hidden, int64_t rows);
  void download_hidden(Tensor& hidden, int64_t rows);
  cudaStream_t stream() const { return stream_.get(); }

  ModelConfig config_;
  TensorParallelShard shard_;
  CudaStageLimits limits_;
  int64_t max_blocks_per_seq_ = 0;
  // Declaration order is destruction order reversed: the pool outlives every array it handed out, the stream
  // outlives the work on it.
  std::unique_ptr<CachingDevicePool> pool_;
  CudaStream stream_;
  std::unique_ptr<parallel::DeviceCommunicator> tp_;
  DeviceStageWeights weights_;
  std::vector<kernels::cuda::DeviceKvCache<__nv_bfloat16>> kv_;  // one per local layer, into kv_memory_
  std::vector<DeviceArray<__nv_bfloat16>> kv_memory_;
  size_t kv_bytes_ = 0;
  kernels::cuda::CublasLtGemm gemm_;
  kernels::cuda::AttentionWorkspace attention_workspace_;
  kernels::cuda::DeviceRopeTable rope_;

  // Activations [max_step_tokens, width], bf16 unless named f32.
  DeviceArray<__nv_bfloat16> residual_, normed_, qkv_, attn_, gate_up_, act_;
  DeviceArray<float> hidden_f32_;  // host transfers
  // Logits: this rank's vocabulary slice [max_sequences, local], padded to the all-gather stride, gathered.
  DeviceArray<float> local_logits_, padded_logits_, gathered_logits_;
  // Step metadata, refreshed before every step (a graph reads them at these addresses).
  DeviceArray<int32_t> ids_, positions_, slots_, decode_tables_, context_lens_, prefill_tables_, bad_token_;
  std::vector<int32_t> host_ids_, host_positions_, host_slots_, host_decode_tables_, host_context_lens_,
      host_prefill_tables_;
  std::vector<float> host_staging_;

  bool graphs_enabled_ = false;
  DecodeGraphs graphs_;
};

}  // namespace tessera::runtime::cuda
