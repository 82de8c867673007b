// `tessera doctor [--json] [--require-gpu] [--model PATH --sha256 HEX]`: one pass/warn/fail line per thing a
// deployment needs, each failure with a hint: the CUDA driver against the CUDA runtime this build was made with
// (the most common failure in private deployments), the GPUs and the P2P/NVLink paths between them, NCCL, the MPI
// library and the launcher that started this process (mpirun, Slurm, PMIx), UCX and its transports, the default
// model's presence and hash, the CPU kernels' instruction set and activations, and the open-files limit. GPU
// libraries are opened at run time (gpu_probe.h), so the command runs on a CPU node and says so. Exit status: 0
// without failures, 1 with any.
#include <mpi.h>
#include <sys/resource.h>
#include <dlfcn.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/error.h"
#include "kernels/cpu/packed_matrix.h"
#include "launcher/commands/commands.h"
#include "launcher/gpu_probe.h"
#include "runtime/model/sha256.h"

namespace tessera::launcher {
namespace {

// The default model, as scripts/fetch-model.sh fetches and pins it (tests/e2e/doctor_test.py checks they agree).
constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";
constexpr const char* kDefaultModelSha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
constexpr rlim_t kOpenFilesWanted = 65536;  // sharded checkpoints, NCCL/UCX endpoints and HTTP clients add up
constexpr rlim_t kOpenFilesMinimum = 1024;

struct DoctorOptions {
  bool json = false;
  bool require_gpu = false;
  std::string model;   // empty: the default model in the fetch-model.sh cache
  std::string sha256;  // expected hash of --model (default model: the pinned one)
};

struct Check {
  std::string name;
  std::string status;  // pass, warn, fail
  std::string message;
  std::string hint;
};

class Report {
 public:
  void pass(std::string name, std::string message) { add(std::move(name), "pass", std::move(message), ""); }
  void warn(std::string name, std::string message, std::string hint) {
    add(std::move(name), "warn", std::move(message), std::move(hint));
  }
  void fail(std::string name, std::string message, std::string hint) {
    add(std::move(name), "fail", std::move(message), std::move(hint));
  }
  const std::vector<Check>& checks() const { return checks_; }
  int count(const std::string& status) const {
    int n = 0;
    for (const auto& c : checks_) n += c.status == status;
    return n;
  }

 private:
  void add(std::string name, std::string status, std::string message, std::string hint) {
    checks_.push_back({std::move(name), std::move(status), std::move(message), std::move(hint)});
  }
  std::vector<Check> checks_;
};

// stdout of a short command, or "" when it cannot run.
std::string command_output(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((command + " 2>/dev/null").c_str(), "r"), pclose);
  if (!pipe) return "";
  std::string out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
  return out;
}

bool on_path(const std::string& tool) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string dirs = path;
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = dirs.find(':', start);
    const std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty() && access((dir + "/" + tool).c_str(), X_OK) == 0) return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string cuda_version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}
const char* env_or(const char* name, const char* fallback) { return env(name) ? env(name) : fallback; }

#ifdef TESSERA_CUDA_TOOLKIT_VERSION
// "13.0.88" -> 13000, the number cudaRuntimeGetVersion would return.
int built_cuda_runtime() {
  const std::string v = TESSERA_CUDA_TOOLKIT_VERSION;
  const int major = std::atoi(v.c_str());
  const size_t dot = v.find('.');
  const int minor = dot == std::string::npos ? 0 : std::atoi(v.c_str() + dot + 1);
  return major * 1000 + minor * 10;
}
#endif

void check_gpus(Report& r, const DoctorOptions& o) {
  const GpuProbe g = probe_gpus();
  auto no_gpu = [&](const std::string& message, const std::string& hint) {
    if (o.require_gpu) r.fail("gpu", message, hint);
    else r.warn("gpu", message + ": this is a CPU node; the cpu backend runs, --backend cuda cannot", hint);
  };
#ifdef TESSERA_CUDA_TOOLKIT_VERSION
  const int runtime = built_cuda_runtime();
#endif
  if (!g.cuda_library_error.empty()) {
    no_gpu("no GPU: no NVIDIA driver (" + g.cuda_library_error + ")",
           "on a GPU node install the NVIDIA driver (its libcuda.so.1) and check `nvidia-smi`");
    return;
  }
  if (!g.driver_cuda_version) {
    r.fail("cuda-driver", "libcuda.so.1 loaded but cuDriverGetVersion failed", "reinstall the NVIDIA driver");
    return;
  }
  const std::string driver = cuda_version_text(*g.driver_cuda_version) +
                             (g.driver_version.empty() ? "" : " (driver " + g.driver_version + ")");
#ifdef TESSERA_CUDA_TOOLKIT_VERSION
  if (*g.driver_cuda_version < runtime) {
    r.fail("cuda-driver", "the driver runs CUDA up to " + driver + " but this tessera was built with CUDA " +
                              cuda_version_text(runtime),
           "install a driver for CUDA >= " + cuda_version_text(runtime) +
               " (CUDA 13 needs driver >= 580), or use a bundle built with the node's CUDA");
  } else {
    r.pass("cuda-driver", "driver supports CUDA " + driver + "; tessera built with CUDA " +
                              cuda_version_text(runtime) + ": compatible");
  }
#else
  r.warn("cuda-driver", "driver supports CUDA " + driver + " but this tessera was built without the CUDA backend",
         "rebuild with -DTESSERA_CUDA=ON (nvcc on PATH) to use the GPUs");
#endif
  if (!g.cuda_init_error.empty() || g.cuda_device_count == 0) {
    no_gpu("no usable GPU: " + (g.cuda_init_error.empty() ? std::string("cuInit found 0 devices") : g.cuda_init_error),
           "check `nvidia-smi`, CUDA_VISIBLE_DEVICES and the container's GPU resources");
    return;
  }
  if (!g.nvml_library_error.empty()) {
    r.warn("gpu", std::to_string(g.cuda_device_count) + " GPU(s) visible to CUDA; NVML unavailable (" +
                      g.nvml_library_error + ")",
           "install the driver's libnvidia-ml.so.1 to see memory and topology");
    return;
  }
  for (const auto& gpu : g.gpus) {
    char line[256];
    std::snprintf(line, sizeof(line), "GPU %d: %s, %.1f GiB, compute capability %d.%d, %d NVLink(s) up", gpu.index,
                  gpu.name.c_str(), static_cast<double>(gpu.memory_total) / (1024.0 * 1024 * 1024), gpu.cc_major,
                  gpu.cc_minor, gpu.nvlinks_up);
    if (gpu.cc_major < 8) {
      r.fail("gpu", line, "Tessera's CUDA kernels need compute capability >= 8.0 (Ampere or newer)");
    } else {
      r.pass("gpu", line);
    }
  }
  if (g.gpus.size() < 2) {
    r.pass("gpu-topology", "one GPU: no peer-to-peer paths to check");
    return;
  }
  int without_p2p = 0, nvlink = 0;
  std::string detail;
  for (const auto& p : g.pairs) {
    without_p2p += !p.p2p_read;
    nvlink += p.nvlink;
    detail += " " + std::to_string(p.a) + "-" + std::to_string(p.b) + ":" + (p.p2p_read ? "" : "no-P2P,") + p.path;
  }
  const std::string summary = std::to_string(g.pairs.size()) + " GPU pair(s), " + std::to_string(nvlink) +
                              " over NVLink, " + std::to_string(without_p2p) + " without P2P;" + detail;
  if (without_p2p > 0) {
    r.warn("gpu-topology", summary,
           "pairs without P2P go through host memory (slow all-reduces): keep a tp group on GPUs with P2P, check "
           "IOMMU/ACS settings and `nvidia-smi topo -m`");
  } else {
    r.pass("gpu-topology", summary);
  }
}

void check_nccl(Report& r) {
  std::string error;
  const auto v = nccl_version(error);
  if (!v) {
    r.warn("nccl", "NCCL not found (" + error + ")",
           "GPU tensor parallelism uses NCCL: install libnccl2 or use the bundle (lib/ holds it); CPU ranks do not "
           "need it");
    return;
  }
  const int major = *v / 10000, minor = *v % 10000 / 100, patch = *v % 100;
  r.pass("nccl", "NCCL " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch));
}

void check_mpi(Report& r) {
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(version, &length);
  const std::string text = first_line(std::string(version, static_cast<size_t>(length)));
  if (text.find("Open MPI") != std::string::npos) r.pass("mpi", "MPI library: " + text);
  else r.warn("mpi", "MPI library: " + text, "Tessera is built and tested with Open MPI");

  std::vector<std::string> launchers;
  if (const char* job = env("SLURM_JOB_ID")) {
    launchers.push_back(std::string("Slurm job ") + job + (env("SLURM_STEP_ID") ? " (srun step)" : " (batch script)"));
  }
  if (const char* size = env("OMPI_COMM_WORLD_SIZE")) {
    launchers.push_back(std::string("Open MPI mpirun, rank ") + env_or("OMPI_COMM_WORLD_RANK", "?") + " of " + size);
  }
  if (env("PMIX_RANK") || env("PMIX_NAMESPACE")) {
    launchers.push_back(std::string("PMIx, namespace ") + env_or("PMIX_NAMESPACE", "?"));
  }
  std::string found;
  if (on_path("mpirun")) found += " mpirun (" + first_line(command_output("mpirun --version")) + ")";
  if (on_path("srun")) {
    const std::string v = first_line(command_output("srun --version"));
    found += " srun (" + (v.empty() ? std::string("no Slurm configuration reachable from here") : v) + ")";
  }
  if (launchers.empty()) {
    r.pass("launcher", "started directly (not by mpirun or srun); on PATH:" + (found.empty() ? " none" : found));
  } else {
    std::string all;
    for (const auto& l : launchers) all += (all.empty() ? "" : "; ") + l;
    r.pass("launcher", "started by " + all + "; on PATH:" + (found.empty() ? " none" : found));
  }
  if (found.empty()) {
    r.warn("launcher-tools", "neither mpirun nor srun is on PATH",
           "source the bundle's env.sh (it puts its mpirun first on PATH) or install openmpi-bin");
  }

  void* pmix = dlopen("libpmix.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!pmix) {
    r.warn("pmix", "PMIx library not found", "srun --mpi=pmix needs Open MPI built with PMIx (Debian's is)");
  } else {
    using GetVersion = const char* (*)();
    auto f = reinterpret_cast<GetVersion>(dlsym(pmix, "PMIx_Get_version"));
    r.pass("pmix", std::string("PMIx: ") + (f ? f() : "version unknown") +
                       (on_path("srun") ? "; use `srun --mpi=pmix` (pmi2 and none do not work with it)" : ""));
  }
}

void check_ucx(Report& r) {
  void* ucp = dlopen("libucp.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!ucp) {
    r.warn("ucx", "UCX not found", "InfiniBand/RoCE between nodes goes through UCX: install libucx0 (the bundle has it)");
    return;
  }
  using GetVersion = const char* (*)();
  auto f = reinterpret_cast<GetVersion>(dlsym(ucp, "ucp_get_version_string"));
  const std::string version = f ? f() : "unknown";
  if (!on_path("ucx_info")) {
    r.pass("ucx", "UCX " + version + " (ucx_info not on PATH: transports not listed)");
    return;
  }
  std::set<std::string> transports;
  static const std::regex kTransport(R"(#\s*Transport:\s*(\S+))");
  const std::string out = command_output("ucx_info -d");
  for (std::sregex_iterator it(out.begin(), out.end(), kTransport), end; it != end; ++it) transports.insert((*it)[1]);
  std::string list;
  for (const auto& t : transports) list += (list.empty() ? "" : ",") + t;
  const bool fast = transports.count("rc_mlx5") || transports.count("rc_verbs") || transports.count("dc_mlx5") ||
                    transports.count("ud_verbs");
  if (transports.empty()) {
    r.warn("ucx", "UCX " + version + ": no transports listed by ucx_info -d", "check UCX_TLS and the network devices");
  } else if (!fast) {
    r.warn("ucx", "UCX " + version + ", transports: " + list + " (no InfiniBand/RoCE)",
           "fine on a TCP-only network (source cluster/env/tcp.env); on InfiniBand install rdma-core and the HCA "
           "driver, then check `ucx_info -d | grep Transport`");
  } else {
    r.pass("ucx", "UCX " + version + ", transports: " + list);
  }
}

void check_model(Report& r, const DoctorOptions& o) {
  std::filesystem::path path;
  std::string expected = o.sha256;
  if (!o.model.empty()) {
    path = o.model;
  } else {
    const char* dir = env("TESSERA_MODEL_DIR");
    const char* home = env("HOME");
    path = dir ? std::filesystem::path(dir) : std::filesystem::path(home ? home : "/") / ".cache/tessera/models";
    path /= kDefaultModelFile;
    if (expected.empty()) expected = kDefaultModelSha256;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    r.warn("model", "model not found: " + path.string(),
           "run scripts/fetch-model.sh (or copy the file there; TESSERA_MODEL_DIR sets the folder)");
    return;
  }
  std::string got;
  try {
    got = runtime::sha256_file(path);
  } catch (const Error& e) {
    r.fail("model", e.what(), "check the file's permissions");
    return;
  }
  if (expected.empty()) {
    r.pass("model", path.string() + " present, SHA-256 " + got + " (no expected hash given)");
  } else if (got != expected) {
    r.fail("model", path.string() + " has SHA-256 " + got + ", expected " + expected,
           "the file is damaged or another version: delete it and run scripts/fetch-model.sh, or copy it again");
  } else {
    r.pass("model", path.string() + " present, SHA-256 " + got + " as expected");
  }
}

// The path the CPU kernels take here (cpuid, TESSERA_CPU_ISA, TESSERA_CPU_ACTIVATIONS): a bad setting fails here as it
// would fail every rank at startup.
void check_cpu_kernels(Report& r) {
  try {
    r.pass("cpu-kernels", kernels::cpu::describe_cpu_kernels());
  } catch (const Error& e) {
    r.fail("cpu-kernels", e.what(), "unset TESSERA_CPU_ISA / TESSERA_CPU_ACTIVATIONS or give a value this CPU runs");
  }
}

void check_open_files(Report& r) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    r.warn("open-files", "cannot read the open-files limit", "check `ulimit -n`");
    return;
  }
  const auto soft = static_cast<unsigned long long>(limit.rlim_cur);
  const auto hard = static_cast<unsigned long long>(limit.rlim_max);
  const std::string text = "open files: soft limit " + std::to_string(soft) + ", hard " + std::to_string(hard);
  const std::string hint = "raise it: `ulimit -n 65536` in the job script, `nofile` in /etc/security/limits.conf, "
                           "Slurm's PropagateResourceLimits, or LimitNOFILE= in a systemd unit";
  if (limit.rlim_cur < kOpenFilesMinimum) {
    r.fail("open-files", text + " (below " + std::to_string(kOpenFilesMinimum) + ")", hint);
  } else if (limit.rlim_cur < kOpenFilesWanted) {
    r.warn("open-files", text + " (below 65536)", hint);
  } else {
    r.pass("open-files", text);
  }
}

int run_doctor(const DoctorOptions& o) {
  Report r;
  check_gpus(r, o);
  check_nccl(r);
  check_mpi(r);
  check_ucx(r);
  check_model(r, o);
  check_cpu_kernels(r);
  check_open_files(r);
  if (o.json) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : r.checks()) {
      checks.push_back({{"check", c.name}, {"status", c.status}, {"message", c.message}, {"hint", c.hint}});
    }
    const nlohmann::json out = {{"checks", checks},
                                {"pass", r.count("pass")}, {"warn", r.count("warn")}, {"fail", r.count("fail")}};
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    for (const auto& c : r.checks()) {
      std::printf("[%s] %-14s %s\n", c.status.c_str(), c.name.c_str(), c.message.c_str());
      if (!c.hint.empty()) std::printf("       %-14s hint: %s\n", "", c.hint.c_str());
    }
    std::printf("doctor: %d pass, %d warn, %d fail\n", r.count("pass"), r.count("warn"), r.count("fail"));
  }
  return r.count("fail") > 0 ? 1 : 0;
}

}  // namespace

void add_doctor_command(CLI::App& app, CommandAction& action) {
  auto* cmd = app.add_subcommand("doctor", "Check this node for running Tessera: driver/CUDA, GPUs, NCCL, MPI, "
                                           "launcher, UCX, model, limits (runs without a GPU)");
  auto o = std::make_shared<DoctorOptions>();
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->add_flag("--require-gpu", o->require_gpu, "A node without a usable GPU fails instead of warning");
  cmd->add_option("--model", o->model, "Check this model file instead of the default model");
  cmd->add_option("--sha256", o->sha256, "Expected SHA-256 of --model");
  cmd->callback([&action, o] { action = [o] { return run_doctor(*o); }; });
}

}  // namespace tessera::launcher
