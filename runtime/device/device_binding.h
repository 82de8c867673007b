#pragma once
// Which GPU a rank uses. The launcher says where a rank sits on its node (Open MPI's local rank, Slurm's
// local id, else an MPI shared-memory split); the mapping to a device is a pure function of that, the
// number of visible devices and how many ranks share one GPU:  device = local_rank / ranks_per_gpu.
// CUDA_VISIBLE_DEVICES is respected: ordinals count visible devices only, and messages name the
// physical entry. The cudaSetDevice part lives in runtime/device/cuda/ (built only with CUDA).
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tessera::runtime {

// Reads one environment variable; tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_environment();

struct LocalRank {
  int rank = 0;
  int size = 0;        // ranks on this node; 0 when the launcher did not say
  std::string source;  // "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID" or "MPI_COMM_TYPE_SHARED"
};

// Open MPI's OMPI_COMM_WORLD_LOCAL_RANK/_SIZE, then Slurm's SLURM_LOCALID (size from
// SLURM_NTASKS_PER_NODE when it is a plain number). nullopt when neither is set; throws tessera::Error
// naming the variable when one is set but is not a non-negative integer.
std::optional<LocalRank> local_rank_from_environment(const EnvLookup& env);

// The environment's answer, else an MPI_COMM_TYPE_SHARED split of MPI_COMM_WORLD. The fallback is
// collective: under one launcher every rank takes the same path, so every rank joins it.
LocalRank detect_local_rank(const EnvLookup& env = process_environment());

// CUDA_VISIBLE_DEVICES as a list of entries ("0", "3", "GPU-8e1f...", "MIG-..."); spaces trimmed.
std::vector<std::string> parse_visible_devices(const std::string& value);

struct DeviceBinding {
  int device = 0;           // ordinal among the visible devices: the cudaSetDevice argument
  std::string physical;     // its CUDA_VISIBLE_DEVICES entry, or the ordinal when the variable is unset
  int ranks_on_device = 1;  // ranks of this node sharing the device (1 when the node size is unknown)
  std::string describe(const LocalRank& local) const;  // "local rank 3 (SLURM_LOCALID) -> cuda:1 (...)"
};

// device = local.rank / ranks_per_gpu. One exception: when exactly one device is visible and
// CUDA_VISIBLE_DEVICES names exactly one, the launcher has given each rank its own GPU (srun
// --gpus-per-task, --gpu-bind) and every rank takes ordinal 0. Throws tessera::Error, naming the local
// rank, its source, the device count and CUDA_VISIBLE_DEVICES, when no device fits.
DeviceBinding choose_device(const LocalRank& local, int visible_devices, int ranks_per_gpu,
                            const std::optional<std::string>& cuda_visible_devices);

}  // namespace tessera::runtime
