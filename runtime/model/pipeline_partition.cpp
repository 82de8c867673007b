#include "runtime/model/pipeline_partition.h"

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "kernels/base/error.h"
#include "runtime/model/model_source.h"
#include "runtime/model/tensor_parallel_shard.h"

namespace tessera::runtime {
namespace {

std::string trimmed(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

}  // namespace

PipelineLayers parse_pipeline_layers(const std::string& text, int pp) {
  PipelineLayers out;
  const std::string value = trimmed(text);
  if (value.empty()) return out;
  TESSERA_CHECK(pp >= 1, "pipeline-parallel size must be >= 1, got pp=", pp);
  if (value == "auto") {
    out.mode = PipelineLayers::Mode::kAuto;
    return out;
  }
  out.mode = PipelineLayers::Mode::kCounts;
  size_t i = 0;
  while (i <= value.size()) {
    const size_t comma = std::min(value.find(',', i), value.size());
    const std::string item = trimmed(value.substr(i, comma - i));
    char* end = nullptr;
    errno = 0;
    const long count = item.empty() ? 0 : std::strtol(item.c_str(), &end, 10);
    TESSERA_CHECK(!item.empty() && end != nullptr && *end == '\0' && errno == 0 &&
                      count >= std::numeric_limits<int>::min() && count <= std::numeric_limits<int>::max(),
                  "--pp-layers '", text, "': '", item, "' is not a layer count (give pp=", pp,
                  " integers >= 1 separated by commas, such as 19,11, or auto)");
    out.counts.push_back(static_cast<int>(count));
    i = comma + 1;
  }
  parallel::check_stage_layer_counts(out.counts, pp);
  return out;
}

int64_t layer_decode_cost(const ModelConfig& c, int tp) {
  const TensorParallelShard s = make_tensor_parallel_shard(c, tp, 0);
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q = s.local_q_heads() * hd, kv = s.local_kv_heads() * hd;
  // q, k, v (column-parallel), o (row-parallel), gate and up (column-parallel), down (row-parallel).
  return hidden * (q + 2 * kv) + q * hidden + 3 * hidden * s.local_ffn();
}

int64_t lm_head_decode_cost(const ModelConfig& c, int tp) {
  return make_tensor_parallel_shard(c, tp, 0).local_vocab() * c.hidden_size;
}

std::vector<int64_t> stage_decode_costs(const ModelConfig& c, const parallel::ParallelLayout& layout) {
  const int64_t layer = layer_decode_cost(c, layout.tp);
  std::vector<int64_t> costs;
  for (int stage = 0; stage < layout.pp; ++stage) {
    costs.push_back(parallel::stage_layers(c.num_layers, layout, stage).size() * layer);
  }
  if (!costs.empty()) costs.back() += lm_head_decode_cost(c, layout.tp);
  return costs;
}

std::vector<int> balance_pipeline_layers(const ModelConfig& c, int tp, int pp) {
  const int n = c.num_layers;
  parallel::stage_layers(n, pp, 0);  // throws for pp < 1 or more stages than layers, as the engine would
  const int64_t layer = layer_decode_cost(c, tp), head = lm_head_decode_cost(c, tp);
  // Stage s over layers [i, j). Every layer has the same shapes, but the search does not rely on it.
  const auto cost = [&](int s, int i, int j) { return (j - i) * layer + (s == pp - 1 ? head : 0); };
  constexpr int64_t kInfinite = std::numeric_limits<int64_t>::max();
  const auto idx = [n](int s, int i) { return static_cast<size_t>(s) * static_cast<size_t>(n + 1) + i; };
  const size_t cells = static_cast<size_t>(pp + 1) * static_cast<size_t>(n + 1);

  // worst[s][i]: the smallest achievable largest stage cost of stages s.. over layers [i, n).
  std::vector<int64_t> worst(cells, kInfinite);
  worst[idx(pp, n)] = 0;
  for (int s = pp - 1; s >= 0; --s) {
    const int stages_after = pp - 1 - s;
    for (int i = s; i <= n - (pp - s); ++i) {
      for (int j = i + 1; j <= n - stages_after; ++j) {
        if (worst[idx(s + 1, j)] == kInfinite) continue;
        worst[idx(s, i)] = std::min(worst[idx(s, i)], std::max(cost(s, i, j), worst[idx(s + 1, j)]));
      }
    }
  }
  const int64_t limit = worst[idx(0, 0)];

  // Among the splits within that limit: the smallest sum of squared stage costs; ties keep the longer earlier stage
  // (j is tried from the longest, and only a clearly smaller sum replaces the choice).
  std::vector<double> squares(cells, std::numeric_limits<double>::infinity());
  std::vector<int> next(cells, -1);
  squares[idx(pp, n)] = 0;
  for (int s = pp - 1; s >= 0; --s) {
    const int stages_after = pp - 1 - s;
    for (int i = s; i <= n - (pp - s); ++i) {
      for (int j = n - stages_after; j >= i + 1; --j) {
        const int64_t here = cost(s, i, j);
        const double rest = squares[idx(s + 1, j)];
        if (here > limit || rest == std::numeric_limits<double>::infinity()) continue;
        const double total = static_cast<double>(here) * static_cast<double>(here) + rest;
        if (next[idx(s, i)] < 0 || total < squares[idx(s, i)] * (1 - 1e-12)) {
          squares[idx(s, i)] = total;
          next[idx(s, i)] = j;
        }
      }
    }
  }
  std::vector<int> counts;
  for (int s = 0, i = 0; s < pp; ++s) {
    const int j = next[idx(s, i)];
    TESSERA_CHECK(j > i, "balance_pipeline_layers: no split of ", n, " layers over pp=", pp);  // cannot happen
    counts.push_back(j - i);
    i = j;
  }
  return counts;
}

parallel::ParallelLayout resolve_pipeline_layout(const ModelConfig& config, int tp, int pp,
                                                 const PipelineLayers& layers) {
  parallel::ParallelLayout layout{tp, pp, {}};
  switch (layers.mode) {
    case PipelineLayers::Mode::kBalanced: break;
    case PipelineLayers::Mode::kCounts:
      parallel::check_stage_layer_counts(layers.counts, pp, config.num_layers);
      layout.stage_layer_counts = layers.counts;
      break;
    case PipelineLayers::Mode::kAuto: layout.stage_layer_counts = balance_pipeline_layers(config, tp, pp); break;
  }
  return layout;
}

parallel::ParallelLayout resolve_pipeline_layout(const std::filesystem::path& model, int tp, int pp,
                                                 const std::string& pp_layers) {
  const PipelineLayers layers = parse_pipeline_layers(pp_layers, pp);
  if (layers.mode == PipelineLayers::Mode::kBalanced) return parallel::ParallelLayout{tp, pp, {}};
  return resolve_pipeline_layout(open_model_source(model).config, tp, pp, layers);
}

}  // namespace tessera::runtime
