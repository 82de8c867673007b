#include "launcher/layout_report.h"

#include <cstdio>
#include <vector>

namespace tessera::launcher {

void print_layout(runtime::Replica& replica) {
  const parallel::Topology& topo = replica.topology();
  const int n = topo.world_size();
  const parallel::LayerRange layers = parallel::stage_layers(replica.config().num_layers, topo.layout(), topo.stage());
  const float mine[4] = {static_cast<float>(layers.begin), static_cast<float>(layers.end),
                         static_cast<float>(replica.weight_bytes()) / 1e6f,
                         static_cast<float>(replica.kv_cache_bytes()) / 1e6f};
  std::vector<float> all(static_cast<size_t>(n) * 4);
  replica.world().all_gather(parallel::host_span(mine), parallel::host_span(all));
  if (topo.rank() != 0) return;
  const runtime::ModelConfig& c = replica.config();
  std::printf("tessera: %s (%s, %d layers, hidden %d, %d heads / %d KV heads, vocab %d) on %d ranks, %s\n",
              c.name.c_str(), c.architecture.c_str(), c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads,
              c.vocab_size, n, topo.layout().to_string().c_str());
  std::printf("  rank 0 loaded its part of the model in %.2f s%s\n", replica.load_seconds(),
              replica.integrity_summary().empty() ? "" : " (the integrity check included)");
  if (!replica.integrity_summary().empty()) {
    std::printf("  model integrity (--verify-sha256): every rank verified its files; rank 0: %s\n",
                replica.integrity_summary().c_str());
  }
  for (int r = 0; r < n; ++r) {
    const float* f = &all[static_cast<size_t>(r) * 4];
    std::printf("  rank %d: stage %d tp_rank %d, layers %d-%d, weights %.1f MB, KV cache %.1f MB\n", r, r / topo.tp(),
                r % topo.tp(), static_cast<int>(f[0]), static_cast<int>(f[1]) - 1, static_cast<double>(f[2]),
                static_cast<double>(f[3]));
  }
  std::fflush(stdout);
}

}  // namespace tessera::launcher
