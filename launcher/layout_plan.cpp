#include "launcher/layout_plan.h"

#include <algorithm>
#include <cmath>

#include "kernels/base/error.h"
#include "parallel/topology.h"

namespace tessera::launcher {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kActivationBytes = 2;  // bf16 activations
constexpr double kLogitBytes = 4;       // fp32 logits
constexpr double kEmbeddingBytes = 2;   // embeddings, the LM head, norms and biases stay bf16 at any weight dtype

// Local KV heads of one rank: split when tp <= kv heads, one (replicated) head per rank when tp > kv heads.
int local_kv_heads(const runtime::ModelConfig& m, int tp) { return m.num_kv_heads >= tp ? m.num_kv_heads / tp : 1; }

// An all-reduce of `bytes` over n ranks: one fixed latency (small decode messages are latency bound; NCCL's
// low-latency protocols do not pay one latency per ring step) plus a ring's 2(n-1)/n of the data on each link.
double all_reduce_seconds(double bytes, int n, double bandwidth_gbps, double latency_us) {
  if (n <= 1) return 0;
  return latency_us * 1e-6 + 2.0 * (n - 1) / n * bytes / (bandwidth_gbps * 1e9);
}
// An all-gather of n shards of `shard_bytes` each: one latency plus the (n-1) shards each rank receives.
double all_gather_seconds(double shard_bytes, int n, double bandwidth_gbps, double latency_us) {
  if (n <= 1) return 0;
  return latency_us * 1e-6 + (n - 1) * shard_bytes / (bandwidth_gbps * 1e9);
}

}  // namespace

LayoutPlan plan_layout(const runtime::ModelConfig& m, const ClusterSpec& c, const PlanSettings& s, int tp, int pp,
                       const runtime::PipelineLayers& partition) {
  LayoutPlan plan;
  plan.tp = tp;
  plan.pp = pp;
  plan.gpus = tp * pp;
  plan.nodes = (plan.gpus + c.gpus_per_node - 1) / c.gpus_per_node;
  auto invalid = [&](std::string why) {
    plan.valid = false;
    plan.invalid_reason = std::move(why);
    return plan;
  };
  if (m.num_heads % tp != 0) return invalid("tp must divide the " + std::to_string(m.num_heads) + " attention heads");
  if (m.num_kv_heads % tp != 0 && tp % m.num_kv_heads != 0) {
    return invalid("tp and the " + std::to_string(m.num_kv_heads) + " KV heads must divide one another");
  }
  if (m.intermediate_size % tp != 0) return invalid("tp must divide the FFN size");
  if (pp > m.num_layers) return invalid("pp exceeds the " + std::to_string(m.num_layers) + " layers");
  if (plan.gpus > c.nodes * c.gpus_per_node) return invalid("needs more GPUs than the cluster has");
  using Mode = runtime::PipelineLayers::Mode;
  if (partition.mode == Mode::kCounts) {
    try {
      parallel::check_stage_layer_counts(partition.counts, pp, m.num_layers);
    } catch (const Error& e) {
      return invalid(e.what());
    }
    plan.stage_layer_counts = partition.counts;
  } else if (partition.mode == Mode::kAuto) {
    plan.stage_layer_counts = runtime::balance_pipeline_layers(m, tp, pp);
  }
  const parallel::ParallelLayout layout{tp, pp, plan.stage_layer_counts};

  const double hidden = m.hidden_size, hd = m.head_dim, ffn = m.intermediate_size, vocab = m.vocab_size;
  const double q_local = m.num_heads / tp * hd;           // query (and attention output) width of one rank
  const double kv_local = local_kv_heads(m, tp) * hd;     // key (and value) width of one rank
  // One layer on one rank: q, k, v, o projections and the MLP's gate, up, down, each 1/tp of the matrix.
  const double layer_matrix_elems = hidden * q_local + 2 * hidden * kv_local + q_local * hidden + 3 * hidden * ffn / tp;
  // Replicated or bf16 per layer: two RMSNorm weights, and Qwen2's q/k/v biases.
  const double layer_small_elems = 2 * hidden + (m.attention_qkv_bias ? q_local + 2 * kv_local : 0);
  const double vocab_local = std::ceil(vocab / tp);  // embedding and LM head rows are split across the tp ranks
  const double usable = c.gpu_memory_gib * kGiB * c.memory_fraction - c.reserve_gib * kGiB;

  plan.kv_capacity_tokens = INT64_MAX;
  for (int stage = 0; stage < pp; ++stage) {
    StagePlan st;
    st.stage = stage;
    const parallel::LayerRange layers = parallel::stage_layers(m.num_layers, layout, stage);
    st.layers = layers.end - layers.begin;
    double weights = st.layers * (layer_matrix_elems * s.weight_bytes + layer_small_elems * kEmbeddingBytes);
    const bool first = stage == 0, last = stage == pp - 1;
    if (first) weights += vocab_local * hidden * kEmbeddingBytes;  // token embedding
    // LM head (the embedding again when tied, stored once only when one stage holds both) and the final norm.
    if (last && !(m.tie_word_embeddings && first)) weights += vocab_local * hidden * kEmbeddingBytes;
    if (last) weights += hidden * kEmbeddingBytes;
    st.weight_bytes = static_cast<uint64_t>(weights);
    // K and V of one token over this stage's layers, this rank's heads.
    st.kv_bytes_per_token = static_cast<uint64_t>(2.0 * st.layers * kv_local * s.kv_bytes);
    // Activations of one forward step of `batched_tokens`: the residual stream and the normed input (2 x hidden),
    // q, k, v (q_local + 2 kv_local) and the MLP's gate and up (2 ffn / tp), bf16; on the last stage the fp32
    // logits of one row per sequence.
    double act = s.batched_tokens * (2 * hidden + q_local + 2 * kv_local + 2 * ffn / tp) * kActivationBytes;
    if (last) act += s.max_seqs * vocab_local * kLogitBytes;
    st.activation_bytes = static_cast<uint64_t>(act);
    st.free_bytes = static_cast<int64_t>(usable - weights - act);
    const int64_t tokens = st.free_bytes > 0 ? st.free_bytes / static_cast<int64_t>(st.kv_bytes_per_token) : 0;
    plan.kv_capacity_tokens = std::min(plan.kv_capacity_tokens, tokens);

    // Decode, batch 1, memory bound: the rank reads all its weights and the KV of `context` tokens once per step;
    // two all-reduces of one bf16 hidden vector per layer (after attention and after the MLP); the last stage
    // all-gathers the fp32 logits of its vocabulary shard. TP groups live inside a node (tp <= gpus_per_node).
    const double read_bytes = weights + static_cast<double>(st.kv_bytes_per_token) * s.context;
    st.decode_seconds = read_bytes / (c.hbm_bandwidth_gbps * 1e9) +
                        2.0 * st.layers * all_reduce_seconds(hidden * kActivationBytes, tp,
                                                             c.intra_node_bandwidth_gbps, c.collective_latency_us);
    if (last) {
      st.decode_seconds += all_gather_seconds(vocab_local * kLogitBytes, tp, c.intra_node_bandwidth_gbps,
                                              c.collective_latency_us);
    }
    plan.decode_seconds += st.decode_seconds;
    if (!last) {
      // One bf16 hidden vector to the next stage: over NVLink when both stages share a node, else the network.
      const int last_rank = (stage + 1) * tp - 1, next_rank = (stage + 1) * tp;
      const bool crosses = last_rank / c.gpus_per_node != next_rank / c.gpus_per_node;
      const double bw = crosses ? c.inter_node_bandwidth_gbps : c.intra_node_bandwidth_gbps;
      plan.decode_seconds += c.collective_latency_us * 1e-6 + hidden * kActivationBytes / (bw * 1e9);
    }
    plan.stages.push_back(st);
  }
  bool weights_fit = true;
  for (const auto& st : plan.stages) weights_fit = weights_fit && st.free_bytes > 0;
  plan.fits = weights_fit && plan.kv_capacity_tokens >= s.context;
  return plan;
}

std::vector<LayoutPlan> plan_layouts(const runtime::ModelConfig& m, const ClusterSpec& c, const PlanSettings& s,
                                     const runtime::PipelineLayers& partition) {
  std::vector<LayoutPlan> out;
  const int gpus = c.nodes * c.gpus_per_node;
  for (int tp = 1; tp <= c.gpus_per_node; ++tp) {
    if (m.num_heads % tp != 0) continue;
    for (int pp = 1; tp * pp <= gpus && pp <= m.num_layers; ++pp) {
      LayoutPlan p = plan_layout(m, c, s, tp, pp, partition);
      if (p.valid) out.push_back(std::move(p));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const LayoutPlan& a, const LayoutPlan& b) {
    if (a.fits != b.fits) return a.fits;
    if (a.fits && a.decode_seconds != b.decode_seconds) return a.decode_seconds < b.decode_seconds;
    if (!a.fits && a.kv_capacity_tokens != b.kv_capacity_tokens) return a.kv_capacity_tokens > b.kv_capacity_tokens;
    return a.gpus < b.gpus;
  });
  return out;
}

}  // namespace tessera::launcher
