#include "runtime/cuda/decode_graphs.h"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"

namespace tessera::runtime::cuda {

DecodeGraphs::DecodeGraphs(std::vector<int> batch_sizes) : sizes_(std::move(batch_sizes)) {
  for (int s : sizes_) TESSERA_CHECK(s >= 1, "CUDA graph batch size must be >= 1, got ", s);
  std::sort(sizes_.begin(), sizes_.end());
  sizes_.erase(std::unique(sizes_.begin(), sizes_.end()), sizes_.end());
}

DecodeGraphs::~DecodeGraphs() {
  for (auto& [size, exec] : graphs_) cudaGraphExecDestroy(exec);
}

int DecodeGraphs::padded_size(int n) const {
  const auto it = std::lower_bound(sizes_.begin(), sizes_.end(), n);
  return it == sizes_.end() ? 0 : *it;
}

void DecodeGraphs::run(int size, cudaStream_t stream, const std::function<void()>& enqueue) {
  TESSERA_CHECK(std::binary_search(sizes_.begin(), sizes_.end(), size), "decode graph of batch ", size,
                " is not a configured size");
  auto it = graphs_.find(size);
  if (it == graphs_.end()) {
    if (warmed_.insert(size).second) {
      enqueue();
      return;
    }
    // Thread-local mode: another thread's unrelated CUDA calls neither invalidate nor join this capture.
    TESSERA_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t graph = nullptr;
    try {
      enqueue();
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);  // leave the stream usable; the partial graph is dropped
      if (graph != nullptr) cudaGraphDestroy(graph);
      cudaGetLastError();
      throw;
    }
    TESSERA_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    TESSERA_CHECK(status == cudaSuccess, "instantiating the decode graph of batch ", size,
                  " failed: ", cudaGetErrorString(status));
    it = graphs_.emplace(size, exec).first;
  }
  TESSERA_CUDA_CHECK(cudaGraphLaunch(it->second, stream));
}

}  // namespace tessera::runtime::cuda
