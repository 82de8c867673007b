#include "launcher/gpu_probe.h"

#include <dlfcn.h>

namespace tessera::launcher {
namespace {

// The few entry points used, declared here (C ABI, stable since CUDA 4 / NVML 5) so that this file builds without
// the CUDA toolkit.
using CuInit = int (*)(unsigned);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using NvmlDevice = void*;
struct NvmlMemory {
  unsigned long long total, free, used;
};
using NvmlInit = int (*)();
using NvmlShutdown = int (*)();
using NvmlDriverVersion = int (*)(char*, unsigned);
using NvmlCount = int (*)(unsigned*);
using NvmlHandle = int (*)(unsigned, NvmlDevice*);
using NvmlName = int (*)(NvmlDevice, char*, unsigned);
using NvmlMemoryInfo = int (*)(NvmlDevice, NvmlMemory*);
using NvmlCapability = int (*)(NvmlDevice, int*, int*);
using NvmlNvLinkState = int (*)(NvmlDevice, unsigned, int*);
using NvmlP2PStatus = int (*)(NvmlDevice, NvmlDevice, int, int*);
using NvmlCommonAncestor = int (*)(NvmlDevice, NvmlDevice, int*);
constexpr int kNvmlP2PRead = 0;       // NVML_P2P_CAPS_INDEX_READ
constexpr int kNvmlP2PNvLink = 2;     // NVML_P2P_CAPS_INDEX_NVLINK
constexpr unsigned kNvmlMaxLinks = 18;  // NVML_NVLINK_MAX_LINKS

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

template <class F>
F symbol(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

std::string topology_text(int level) {
  switch (level) {
    case 0: return "same board";
    case 10: return "one PCIe switch";
    case 20: return "several PCIe switches";
    case 30: return "one host bridge";
    case 40: return "one NUMA node";
    case 50: return "across CPU sockets";
    default: return "unknown path";
  }
}

void probe_cuda(GpuProbe& out) {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    out.cuda_library_error = dl_error();
    return;
  }
  auto init = symbol<CuInit>(lib, "cuInit");
  auto version = symbol<CuDriverGetVersion>(lib, "cuDriverGetVersion");
  auto count = symbol<CuDeviceGetCount>(lib, "cuDeviceGetCount");
  int v = 0;
  if (version && version(&v) == 0) out.driver_cuda_version = v;
  if (!init) return;
  const int rc = init(0);
  if (rc != 0) {
    out.cuda_init_error = "cuInit failed with CUresult " + std::to_string(rc) +
                          (rc == 100 ? " (no CUDA-capable device)" : rc == 999 ? " (unknown: check dmesg)" : "");
    return;
  }
  int n = 0;
  if (count && count(&n) == 0) out.cuda_device_count = n;
}

void probe_nvml(GpuProbe& out) {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    out.nvml_library_error = dl_error();
    return;
  }
  auto init = symbol<NvmlInit>(lib, "nvmlInit_v2");
  auto shutdown = symbol<NvmlShutdown>(lib, "nvmlShutdown");
  if (!init || init() != 0) {
    out.nvml_library_error = "nvmlInit_v2 failed";
    return;
  }
  char text[96] = {};
  if (auto f = symbol<NvmlDriverVersion>(lib, "nvmlSystemGetDriverVersion"); f && f(text, sizeof(text)) == 0) {
    out.driver_version = text;
  }
  unsigned n = 0;
  auto count = symbol<NvmlCount>(lib, "nvmlDeviceGetCount_v2");
  auto handle = symbol<NvmlHandle>(lib, "nvmlDeviceGetHandleByIndex_v2");
  if (!count || !handle || count(&n) != 0) n = 0;
  auto name = symbol<NvmlName>(lib, "nvmlDeviceGetName");
  auto memory = symbol<NvmlMemoryInfo>(lib, "nvmlDeviceGetMemoryInfo");
  auto capability = symbol<NvmlCapability>(lib, "nvmlDeviceGetCudaComputeCapability");
  auto link_state = symbol<NvmlNvLinkState>(lib, "nvmlDeviceGetNvLinkState");
  auto p2p = symbol<NvmlP2PStatus>(lib, "nvmlDeviceGetP2PStatus");
  auto ancestor = symbol<NvmlCommonAncestor>(lib, "nvmlDeviceGetTopologyCommonAncestor");
  std::vector<NvmlDevice> devices;
  for (unsigned i = 0; i < n; ++i) {
    NvmlDevice d = nullptr;
    if (handle(i, &d) != 0) continue;
    devices.push_back(d);
    GpuInfo g;
    g.index = static_cast<int>(i);
    char buf[96] = {};
    if (name && name(d, buf, sizeof(buf)) == 0) g.name = buf;
    NvmlMemory mem{};
    if (memory && memory(d, &mem) == 0) g.memory_total = mem.total;
    if (capability) capability(d, &g.cc_major, &g.cc_minor);
    for (unsigned l = 0; link_state && l < kNvmlMaxLinks; ++l) {
      int active = 0;
      if (link_state(d, l, &active) == 0 && active == 1) ++g.nvlinks_up;
    }
    out.gpus.push_back(g);
  }
  for (size_t a = 0; a < devices.size(); ++a) {
    for (size_t b = a + 1; b < devices.size(); ++b) {
      GpuPair pair;
      pair.a = static_cast<int>(a);
      pair.b = static_cast<int>(b);
      int status = -1;
      if (p2p && p2p(devices[a], devices[b], kNvmlP2PRead, &status) == 0) pair.p2p_read = status == 0;
      status = -1;
      if (p2p && p2p(devices[a], devices[b], kNvmlP2PNvLink, &status) == 0) pair.nvlink = status == 0;
      int level = -1;
      if (ancestor && ancestor(devices[a], devices[b], &level) == 0) pair.path = topology_text(level);
      if (pair.nvlink) pair.path = "NVLink";
      out.pairs.push_back(pair);
    }
  }
  if (shutdown) shutdown();
}

}  // namespace

GpuProbe probe_gpus() {
  GpuProbe out;
  probe_cuda(out);
  probe_nvml(out);
  return out;
}

std::optional<int> nccl_version(std::string& error) {
  void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    error = dl_error();
    return std::nullopt;
  }
  using GetVersion = int (*)(int*);
  auto f = symbol<GetVersion>(lib, "ncclGetVersion");
  int v = 0;
  if (!f || f(&v) != 0) {
    error = "ncclGetVersion failed";
    return std::nullopt;
  }
  return v;
}

}  // namespace tessera::launcher
