#include "runtime/device/device_binding.h"

#include <algorithm>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

std::string trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  const size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

}  // namespace

std::vector<std::string> parse_visible_devices(const std::string& value) {
  std::vector<std::string> entries;
  size_t start = 0;
  while (start <= value.size()) {
    const size_t comma = value.find(',', start);
    const std::string entry = trim(value.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!entry.empty()) entries.push_back(entry);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return entries;
}

std::string DeviceBinding::describe(const LocalRank& local) const {
  std::string text = concat("local rank ", local.rank, " (", local.source, ") -> cuda:", device);
  if (physical != std::to_string(device)) text += concat(" (CUDA_VISIBLE_DEVICES entry ", physical, ")");
  if (ranks_on_device > 1) text += concat(", shared by ", ranks_on_device, " ranks");
  return text;
}

DeviceBinding choose_device(const LocalRank& local, int visible_devices, int ranks_per_gpu,
                            const std::optional<std::string>& cuda_visible_devices) {
  const std::string visible_text =
      cuda_visible_devices ? concat("CUDA_VISIBLE_DEVICES='", *cuda_visible_devices, "'") : "CUDA_VISIBLE_DEVICES unset";
  TESSERA_CHECK(ranks_per_gpu >= 1, "ranks_per_gpu must be at least 1, got ", ranks_per_gpu);
  TESSERA_CHECK(local.rank >= 0, "local rank ", local.rank, " (", local.source, ") is negative");
  TESSERA_CHECK(visible_devices > 0, "local rank ", local.rank, " (", local.source, ") found no CUDA device (",
                visible_text, ")");
  const std::vector<std::string> entries =
      cuda_visible_devices ? parse_visible_devices(*cuda_visible_devices) : std::vector<std::string>{};

  DeviceBinding binding;
  binding.device = local.rank / ranks_per_gpu;
  const bool isolated_by_launcher = visible_devices == 1 && entries.size() == 1;
  if (binding.device >= visible_devices && isolated_by_launcher) {
    binding.device = 0;
    binding.ranks_on_device = 1;
  } else {
    TESSERA_CHECK(binding.device < visible_devices, "local rank ", local.rank, " (", local.source,
                  ") with ranks_per_gpu ", ranks_per_gpu, " needs device ", binding.device, " but only ",
                  visible_devices, " are visible (", visible_text, "); start at most ", visible_devices * ranks_per_gpu,
                  " ranks per node or raise ranks_per_gpu");
    if (local.size > 0) {
      const int remaining = local.size - binding.device * ranks_per_gpu;
      binding.ranks_on_device = std::max(1, std::min(ranks_per_gpu, remaining));
    }
  }
  binding.physical = static_cast<size_t>(binding.device) < entries.size() ? entries[static_cast<size_t>(binding.device)]
                                                                          : std::to_string(binding.device);
  return binding;
}

}  // namespace tessera::runtime
