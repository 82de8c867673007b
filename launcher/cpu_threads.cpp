#include "launcher/cpu_threads.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "kernels/base/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel_for.h"

namespace tessera::launcher {
namespace {

int env_positive(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  TESSERA_CHECK(end && *end == '\0' && n >= 1 && n <= 4096, name, "='", value, "' is not a thread count (1..4096)");
  return static_cast<int>(n);
}

}  // namespace

int local_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(name)) {
      const int n = std::atoi(v);
      if (n >= 1) return n;
    }
  }
  return 1;
}

int configure_cpu_threads() {
  int threads = env_positive("TESSERA_THREADS");
  if (threads == 0) threads = env_positive("OPENBLAS_NUM_THREADS");
  if (threads == 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::max(1, cores / local_ranks());
  }
  kernels::cpu::set_gemm_threads(threads);
  kernels::cpu::set_kernel_threads(threads);
  return threads;
}

}  // namespace tessera::launcher
