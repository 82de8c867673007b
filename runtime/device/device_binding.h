#pragma once
// Which GPU a rank uses. Where a rank sits on its node comes from parallel/local_rank.h (the launcher's
// environment, else the communication layer); the mapping to a device is a pure function of that, the
// number of visible devices and how many ranks share one GPU:  device = local_rank / ranks_per_gpu.
// CUDA_VISIBLE_DEVICES is respected: ordinals count visible devices only, and messages name the
// physical entry. The cudaSetDevice part lives in runtime/device/cuda/ (built only with CUDA).
#include <optional>
#include <string>
#include <vector>

#include "parallel/local_rank.h"

namespace tessera::runtime {

using parallel::detect_local_rank;
using parallel::EnvLookup;
using parallel::local_rank_from_environment;
using parallel::LocalRank;
using parallel::process_environment;

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
