#pragma once
// What one tensor-parallel rank owns of a model (Megatron-style sharding):
//  - attention: whole query heads [q_head_begin, q_head_end); the KV heads those queries read. With
//    num_kv_heads >= tp the KV heads are split evenly; with num_kv_heads < tp each KV head is replicated on
//    tp / num_kv_heads consecutive ranks (the ranks whose query heads map to it).
//  - FFN: intermediate slice [ffn_begin, ffn_end) of gate/up (column-parallel) and down (row-parallel).
//  - vocabulary: rows [vocab_begin, vocab_end) of the embedding and the LM head (vocab-parallel).
#include <cstdint>
#include <string>

#include "runtime/model/model_config.h"

namespace tessera::runtime {

struct TensorParallelShard {
  int tp = 1;
  int tp_rank = 0;
  int q_head_begin = 0, q_head_end = 0;
  int kv_head_begin = 0, kv_head_end = 0;
  int64_t ffn_begin = 0, ffn_end = 0;
  int64_t vocab_begin = 0, vocab_end = 0;

  int local_q_heads() const { return q_head_end - q_head_begin; }
  int local_kv_heads() const { return kv_head_end - kv_head_begin; }
  int64_t local_ffn() const { return ffn_end - ffn_begin; }
  int64_t local_vocab() const { return vocab_end - vocab_begin; }
  // Vocabulary rows per rank before the last rank's remainder: every rank but the last holds this many.
  int64_t vocab_stride = 0;
};

// Throws tessera::Error explaining the constraint when the model cannot be split tp ways (heads not divisible by
// tp, KV heads neither a multiple nor a divisor of tp, FFN size not divisible by tp, tp > vocab).
void check_tensor_parallel_split(const ModelConfig& config, int tp);
TensorParallelShard make_tensor_parallel_shard(const ModelConfig& config, int tp, int tp_rank);

}  // namespace tessera::runtime
