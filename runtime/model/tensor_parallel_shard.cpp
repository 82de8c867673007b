#include "runtime/model/tensor_parallel_shard.h"

#include "kernels/base/error.h"

namespace tessera::runtime {

void check_tensor_parallel_split(const ModelConfig& config, int tp) {
  TESSERA_CHECK(tp >= 1, "tensor-parallel size must be >= 1, got tp=", tp);
  TESSERA_CHECK(config.num_heads % tp == 0, "tp=", tp, " does not divide the model's ", config.num_heads,
                " attention heads: choose a tp that divides ", config.num_heads);
  const int kv = config.num_kv_heads;
  TESSERA_CHECK(kv % tp == 0 || tp % kv == 0, "tp=", tp, " and the model's ", kv,
                " KV heads: one must divide the other (KV heads are split, or replicated when fewer than tp)");
  TESSERA_CHECK(config.intermediate_size % tp == 0, "tp=", tp, " does not divide the FFN size ",
                config.intermediate_size);
  TESSERA_CHECK(config.vocab_size >= tp, "tp=", tp, " exceeds the vocabulary size ", config.vocab_size);
}

TensorParallelShard make_tensor_parallel_shard(const ModelConfig& config, int tp, int tp_rank) {
  check_tensor_parallel_split(config, tp);
  TESSERA_CHECK(tp_rank >= 0 && tp_rank < tp, "tp_rank ", tp_rank, " out of range for tp=", tp);
  TensorParallelShard s;
  s.tp = tp;
  s.tp_rank = tp_rank;
  const int q_per_rank = config.num_heads / tp;
  s.q_head_begin = tp_rank * q_per_rank;
  s.q_head_end = s.q_head_begin + q_per_rank;
  if (config.num_kv_heads >= tp) {
    const int kv_per_rank = config.num_kv_heads / tp;
    s.kv_head_begin = tp_rank * kv_per_rank;
    s.kv_head_end = s.kv_head_begin + kv_per_rank;
  } else {
    // Replicated: tp / kv ranks share a KV head, and their query heads are exactly that head's group.
    const int ranks_per_kv_head = tp / config.num_kv_heads;
    s.kv_head_begin = tp_rank / ranks_per_kv_head;
    s.kv_head_end = s.kv_head_begin + 1;
  }
  const int64_t ffn_per_rank = config.intermediate_size / tp;
  s.ffn_begin = tp_rank * ffn_per_rank;
  s.ffn_end = s.ffn_begin + ffn_per_rank;
  s.vocab_stride = (config.vocab_size + tp - 1) / tp;
  s.vocab_begin = std::min<int64_t>(config.vocab_size, tp_rank * s.vocab_stride);
  s.vocab_end = std::min<int64_t>(config.vocab_size, s.vocab_begin + s.vocab_stride);
  return s;
}

}  // namespace tessera::runtime
