#pragma once
// How a Replica is built: the model, the layout, the backend and its memory limits.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/packed_matrix.h"
#include "parallel/rank_activity.h"
#include "parallel/topology.h"

namespace tessera::runtime {

// Settings only the GPU backends read.
struct GpuOptions {
  double memory_fraction = 0.9;  // share of the device for weights + KV cache + activations
  int ranks_per_gpu = 0;         // 0: ranks on the node / visible devices, rounded up
  // Batch sizes whose pure-decode steps run as captured CUDA graphs (a batch is padded up to the next one);
  // empty: no graphs.
  std::vector<int> graph_batch_sizes = {1, 2, 4, 8, 16, 32, 64};
};

// How big this replica's KV cache is. The first that is set wins: an exact block count, a byte budget per rank,
// or a fraction of the memory left after the weights (like vLLM's gpu_memory_fraction; on the CPU backend of what
// the node has available, shared evenly by its ranks). With none set, the cache holds max_sequences sequences of
// max_sequence_length (what `generate` and `bench` need).
struct KvCacheSizing {
  int64_t blocks = 0;
  uint64_t memory_bytes = 0;
  double memory_fraction = 0.0;
  int ranks_on_node = 1;  // ranks sharing the node's memory (the launcher knows)
};

struct ReplicaOptions {
  std::filesystem::path model;
  // --verify-sha256: a sha256sum manifest or one 64-hex hash that every rank checks the files it maps against
  // before loading them (runtime/model/model_integrity.h); empty: no check.
  std::string verify_sha256;
  parallel::ParallelLayout layout;
  std::string backend = "cpu";  // a registered stage backend (runtime/engine/stage_backend.h): "cpu", "cuda"
  int block_size = 16;
  int max_sequence_length = 0;  // 0: the model's context length, capped at 4096; -1: the model's, uncapped
  int max_sequences = 1;        // the KV cache holds this many sequences of max_sequence_length (at most)
  int max_step_tokens = 2048;   // tokens per engine step (decode tokens + prefill chunks)
  bool prefix_caching = true;   // reuse the KV blocks of prompts that start like earlier ones
  // Plans in flight at once (runtime/engine/engine.h): 0 means pp, so that every pipeline stage has a micro-batch to
  // work on; 1 runs one step at a time (every other stage idles).
  int micro_batches = 0;
  // How hidden states cross from one stage to the next (StageExecutor::Transfer): "full", "sliced" (each TP rank
  // sends 1/tp of the rows, the next stage all-gathers them), or "auto": sliced when tp > 1 and some stage's peer is
  // on another host, full otherwise.
  std::string pipeline_transfer = "auto";
  KvCacheSizing kv_cache;
  // CPU backend: how the projection matrices are kept. native (the default): the model file's own quantized blocks
  // where it has them (GGUF), computed on directly — as exact as f32, a quarter of the bytes per decode step for
  // Q4 files; matrices without blocks (safetensors, dummy, f32/f16 tensors) are kept in f32. f32: always dequantized.
  // bf16 / q8_0: repacked, fewer bytes, lossy.
  kernels::cpu::WeightFormat weight_format = kernels::cpu::WeightFormat::kNative;
  // CPU backend: what the KV cache stores (kernels/cpu/attention.h, KvDtype): f32 (exact), or f16 (half the memory
  // per token, so twice the tokens in the same budget; K and V rounded when written). The CUDA backend keeps its
  // cache in bf16 and refuses f16 here.
  kernels::cpu::KvDtype kv_dtype = kernels::cpu::KvDtype::kF32;
  GpuOptions gpu;
  // Where the engine reports what it is doing, for the rank watchdog that the launcher started before the load
  // (parallel/rank_watchdog.h); null: the engine keeps its own.
  parallel::RankActivity* activity = nullptr;
};

}  // namespace tessera::runtime
