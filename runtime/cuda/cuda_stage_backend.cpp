#include "runtime/cuda/cuda_stage_backend.h"

#include <algorithm>

#include "kernels/base/error.h"
#include "parallel/process_groups.h"
#include "parallel/staged/staged_communicator.h"
#include "runtime/cuda/cuda_decoder_stage.h"
#include "runtime/cuda/nccl_support.h"
#include "runtime/device/cuda/cuda_device.h"
#include "runtime/device/kv_cache_budget.h"
#include "runtime/engine/stage_backend.h"

namespace tessera::runtime::cuda {
namespace {

// CUDA context, cuBLASLt handle, NCCL buffers and graph executables: memory outside our own allocations.
constexpr uint64_t kRuntimeReserveBytes = uint64_t{1} << 30;

int visible_devices() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail("backend cuda: no usable CUDA device (cudaGetDeviceCount: ", cudaGetErrorString(status), ")");
  }
  TESSERA_CHECK(count > 0, "backend cuda: no CUDA device is visible");
  return count;
}

class CudaStageBuilder final : public StageBuilder {
 public:
  explicit CudaStageBuilder(const StageRequest& request) : request_(request) {}

  int64_t load() override {
    const StageRequest& r = request_;
    TESSERA_CHECK(r.options.kv_dtype == kernels::cpu::KvDtype::kF32, "backend cuda: --kv-cache-dtype ",
                  kernels::cpu::kv_dtype_name(r.options.kv_dtype),
                  " is for the CPU backend; the CUDA backend keeps its KV cache in bf16");
    const GpuOptions& gpu = r.options.gpu;
    int ranks_per_gpu = gpu.ranks_per_gpu;
    if (ranks_per_gpu <= 0) {  // as many ranks per device as it takes to place every rank of the node
      const LocalRank local = detect_local_rank();
      const int devices = visible_devices();
      ranks_per_gpu = std::max(1, (std::max(local.size, 1) + devices - 1) / devices);
    }
    bound_ = bind_device(ranks_per_gpu);
    pool_ = make_cuda_pool(bound_.binding.device);
    stream_ = CudaStream::create();

    limits_.max_sequences = r.options.max_sequences;
    limits_.max_step_tokens = std::max(r.options.max_step_tokens, r.options.max_sequences);
    limits_.max_sequence_length = r.max_sequence_length;
    limits_.block_size = r.options.block_size;
    limits_.graph_batch_sizes = gpu.graph_batch_sizes;

    // The plan comes first, from the shapes, so that a model that cannot fit fails with the numbers before
    // anything is uploaded. Ranks sharing a device share its memory evenly.
    const bool first = r.topology.is_first_stage(), last = r.topology.is_last_stage();
    const DeviceMemoryInfo memory = cuda_memory_info();
    KvCacheBudgetInput input;
    input.total_device_bytes = memory.total_bytes / static_cast<uint64_t>(std::max(1, bound_.binding.ranks_on_device));
    input.gpu_memory_fraction = gpu.memory_fraction;
    input.weight_bytes = device_weight_bytes(r.config, r.shard, r.layers, first, last);
    // + the pool's rounding of each layer's K and V arrays up to 2 MiB.
    input.reserved_bytes = CudaDecoderStage::activation_bytes(r.config, r.shard, limits_) + kRuntimeReserveBytes +
                           uint64_t{2} * static_cast<uint64_t>(r.layers.size()) * (uint64_t{2} << 20);
    input.block_bytes = kv_block_bytes(r.layers.size(), r.options.block_size, r.shard.local_kv_heads(),
                                       r.config.head_dim, sizeof(__nv_bfloat16));
    plan_kv_cache(input);  // throws, with the numbers, when not one block fits

    weights_ = upload_stage_weights(r.weights, r.config, r.shard, r.layers, first, last, *pool_, stream_.get());
    // Re-planned with what the pool really holds (it rounds large arrays up to 2 MiB).
    input.weight_bytes = pool_->stats().reserved_bytes();
    const KvCacheBudget budget = plan_kv_cache(input);
    const int64_t per_sequence = (r.max_sequence_length + r.options.block_size - 1) / r.options.block_size;
    TESSERA_CHECK(budget.num_blocks >= per_sequence, "cuda:", bound_.binding.device, " (",
                  bound_.binding.ranks_on_device, " rank(s) on it): ", budget.describe(), " after ",
                  input.weight_bytes, " bytes of weights and ", input.reserved_bytes,
                  " bytes of activations and workspaces; one sequence of ", r.max_sequence_length, " tokens needs ",
                  per_sequence, " blocks: lower --max-seq-len, raise gpu_memory_fraction or use more ranks");
    return std::min<int64_t>(budget.num_blocks, r.wanted_kv_blocks);
  }

  BuiltStage finish(int64_t kv_blocks, const WorldMin& world_min) override {
    const StageRequest& r = request_;
    // NCCL refuses two members on one device: when any rank shares its GPU, every TP group goes through the host.
    const bool shared = world_min(bound_.binding.ranks_on_device > 1 ? 0 : 1) == 0;
    std::unique_ptr<parallel::DeviceCommunicator> tp;
    if (r.topology.tp() > 1) {
      if (!shared && nccl_available()) {
        tp = make_nccl_communicator(r.tp, stream_.get());
      } else {
        auto host = parallel::make_mpi_group(r.topology.tp_group(r.topology.stage()), concat(r.tp.name(), " (staged)"));
        tp = std::make_unique<parallel::StagedCommunicator>(std::move(host), stream_.get());
      }
    }
    BuiltStage built;
    built.weight_bytes = weights_.bytes();
    auto stage = std::make_unique<CudaDecoderStage>(r.config, r.shard, limits_, std::move(pool_), std::move(stream_),
                                                    std::move(weights_), kv_blocks, std::move(tp));
    built.kv_cache_bytes = stage->kv_cache_bytes();
    built.stage = std::move(stage);
    return built;
  }

 private:
  const StageRequest& request_;
  BoundDevice bound_;
  CudaStageLimits limits_;
  std::unique_ptr<CachingDevicePool> pool_;
  CudaStream stream_;
  DeviceStageWeights weights_;  // declared after pool_ and stream_: released first
};

}  // namespace

void register_cuda_stage_backend() {
  register_stage_backend("cuda", [](const StageRequest& request) { return std::make_unique<CudaStageBuilder>(request); });
}

}  // namespace tessera::runtime::cuda
