#include "runtime/engine/stage_backend.h"

#include <map>

#include "kernels/base/error.h"
#include "runtime/model/decoder_stage.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/stage_weights.h"
#include "runtime/device/host_memory.h"

namespace tessera::runtime {
namespace {

// The CPU backend: f32 (or packed) weights in host memory, a KV cache of exactly the blocks asked for.
class CpuStageBuilder final : public StageBuilder {
 public:
  explicit CpuStageBuilder(const StageRequest& request) : request_(request) {}

  int64_t load() override {
    const StageRequest& r = request_;
    weights_ = load_stage_weights(r.weights, r.config, r.shard, r.layers, r.topology.is_first_stage(),
                                  r.topology.is_last_stage(), r.options.weight_format);
    KvCacheShape one_block;
    one_block.num_layers = r.layers.size();
    one_block.block_size = r.options.block_size;
    one_block.num_blocks = 1;
    one_block.kv_heads = r.shard.local_kv_heads();
    one_block.head_dim = r.config.head_dim;
    one_block.dtype = r.options.kv_dtype;
    return host_kv_blocks(r.options.kv_cache, one_block.bytes(), r.wanted_kv_blocks);
  }

  BuiltStage finish(int64_t kv_blocks, const WorldMin&) override {
    const StageRequest& r = request_;
    KvCacheShape cache;
    cache.num_layers = r.layers.size();
    cache.block_size = r.options.block_size;
    cache.num_blocks = static_cast<int>(kv_blocks);
    cache.kv_heads = r.shard.local_kv_heads();
    cache.head_dim = r.config.head_dim;
    cache.dtype = r.options.kv_dtype;
    BuiltStage built;
    built.weight_bytes = weights_.bytes();
    built.kv_cache_bytes = cache.bytes();
    built.stage = std::make_unique<DecoderStage>(r.config, r.shard, std::move(weights_), cache, r.tp);
    return built;
  }

 private:
  const StageRequest& request_;
  StageWeights weights_;
};

std::map<std::string, StageBackendFactory>& registry() {
  static std::map<std::string, StageBackendFactory> backends = {
      {"cpu", [](const StageRequest& request) { return std::make_unique<CpuStageBuilder>(request); }}};
  return backends;
}

}  // namespace

void register_stage_backend(const std::string& name, StageBackendFactory factory) {
  registry()[name] = std::move(factory);
}

std::vector<std::string> stage_backend_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<StageBuilder> make_stage_builder(const std::string& name, const StageRequest& request) {
  const auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const std::string& n : stage_backend_names()) known += (known.empty() ? "" : ", ") + n;
    fail("backend '", name, "' is not available in this build (available: ", known, ")",
         name == "cuda" ? "; the CUDA backend needs a build configured with CUDA (nvcc found, -DTESSERA_CUDA=ON)" : "");
  }
  return it->second(request);
}

}  // namespace tessera::runtime
