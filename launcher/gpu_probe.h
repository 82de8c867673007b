#pragma once
// What `tessera doctor` learns about the NVIDIA driver and GPUs, through libcuda.so.1 and libnvidia-ml.so.1
// opened at run time (dlopen) rather than linked: on a CPU node, or a GPU node whose driver is broken, the probe
// reports what is missing instead of the binary failing to start.
#include <optional>
#include <string>
#include <vector>

namespace tessera::launcher {

struct GpuInfo {
  int index = 0;
  std::string name;
  unsigned long long memory_total = 0;  // bytes
  int cc_major = 0;
  int cc_minor = 0;
  int nvlinks_up = 0;  // active NVLink links
};

struct GpuPair {
  int a = 0, b = 0;
  bool p2p_read = false;
  bool nvlink = false;
  std::string path;  // "NVLink", "same PCIe switch", "host bridge", "across CPU sockets", ...
};

struct GpuProbe {
  std::string cuda_library_error;      // empty: libcuda.so.1 loaded
  std::optional<int> driver_cuda_version;  // cuDriverGetVersion: the newest CUDA the driver runs (12040 = 12.4)
  std::string cuda_init_error;         // cuInit failure, if any
  int cuda_device_count = 0;
  std::string nvml_library_error;      // empty: libnvidia-ml.so.1 loaded
  std::string driver_version;          // "550.54.15" from NVML
  std::vector<GpuInfo> gpus;
  std::vector<GpuPair> pairs;          // every unordered pair of GPUs
};

GpuProbe probe_gpus();

// Optional libraries of the GPU path, also opened at run time: NCCL's version (ncclGetVersion, 22304 = 2.23.4).
std::optional<int> nccl_version(std::string& error);

}  // namespace tessera::launcher
