#pragma once
// CUDA graphs of the decode step, one per batch size of a configured set: a decode step of a small batch is a few
// hundred short kernels whose launch overhead rivals their run time; a graph launches them all at once.
// A batch of n decode tokens runs as the smallest captured size >= n, its extra rows padding (the caller's
// metadata makes them harmless: no KV write, a one-token context). The work a graph replays must read everything
// that changes per step (token ids, positions, KV slots, block tables, context lengths) from fixed device buffers
// that the caller refreshes before run().
#include <cuda_runtime.h>

#include <functional>
#include <map>
#include <set>
#include <vector>

namespace tessera::runtime::cuda {

class DecodeGraphs {
 public:
  explicit DecodeGraphs(std::vector<int> batch_sizes);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // The size a batch of n decode tokens runs as; 0 when no configured size holds it (run it eagerly then).
  int padded_size(int n) const;

  // Runs the work `enqueue` puts on `stream` for a batch of `size` (a configured size). First call of a size:
  // eagerly, which also warms what capture must not do (GEMM plans, workspace growth). Second call: captured into
  // a graph, then launched. Later calls: the graph is launched.
  void run(int size, cudaStream_t stream, const std::function<void()>& enqueue);

  size_t captured() const { return graphs_.size(); }

 private:
  std::vector<int> sizes_;  // ascending
  std::set<int> warmed_;
  std::map<int, cudaGraphExec_t> graphs_;
};

}  // namespace tessera::runtime::cuda
