// GFLOP/s of the native block kernels (PackedMatrix in the GGUF file's block formats) per instruction set and number
// of rows of x, on random blocks of SmolLM2-135M's shapes: what a decode step at batch m costs per matrix, without
// the rest of the model. Usage: tessera_bench_block_gemv [--threads N] [--isa scalar|avx2|avx512] [--m 1,4,16,64]
// Best of 5 rounds, timed both by the wall clock and by the process's CPU time: on a machine shared with other jobs
// the CPU time (per thread) is the steadier measure of the kernel itself.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/half.h"
#include "kernels/cpu/dequant.h"
#include "kernels/cpu/packed_matrix.h"
#include "kernels/cpu/parallel_for.h"

namespace k = tessera::kernels::cpu;

namespace {

k::QuantizedRows random_rows(k::QuantFormat format, int64_t rows, int64_t cols) {
  std::mt19937 rng(7);
  k::QuantizedRows q;
  q.format = format;
  q.rows = rows;
  q.cols = cols;
  q.bytes.resize(static_cast<size_t>(rows * q.row_bytes()));
  for (std::byte& b : q.bytes) b = static_cast<std::byte>(rng() & 0xFF);
  const k::QuantLayout layout = k::quant_layout(format);
  const uint16_t scale = tessera::float_to_fp16(0.01f).bits;
  for (size_t b = 0; b < q.bytes.size() / static_cast<size_t>(layout.block_bytes); ++b) {
    std::byte* block = q.bytes.data() + b * static_cast<size_t>(layout.block_bytes);
    if (format == k::QuantFormat::kQ6_K) block += 208;
    std::memcpy(block, &scale, 2);
    if (format == k::QuantFormat::kQ4_1 || format == k::QuantFormat::kQ4_K) std::memcpy(block + 2, &scale, 2);
  }
  return q;
}

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  std::string isa = "", ms = "1,4,16,64,256";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--isa") == 0) isa = argv[i + 1];
    else if (std::strcmp(argv[i], "--m") == 0) ms = argv[i + 1];
  }
  k::set_kernel_threads(threads);
  if (!isa.empty()) k::set_packed_isa_limit(k::parse_packed_isa(isa));
  std::printf("isa %s, %d thread(s); * = by the process's CPU time over the threads\n",
              std::string(k::packed_isa_name(k::packed_isa())).c_str(), threads);
  struct Shape { const char* name; k::QuantFormat format; int64_t rows, cols; };
  const Shape shapes[] = {{"q4_1 gate_up 3072x576", k::QuantFormat::kQ4_1, 3072, 576},
                          {"q4_1 down 576x1536", k::QuantFormat::kQ4_1, 576, 1536},
                          {"q8_0 lm_head 49152x576", k::QuantFormat::kQ8_0, 49152, 576},
                          {"q4_0 3072x576", k::QuantFormat::kQ4_0, 3072, 576},
                          {"q4_k 3072x576", k::QuantFormat::kQ4_K, 3072, 768},
                          {"q6_k 3072x576", k::QuantFormat::kQ6_K, 3072, 768}};
  std::vector<int64_t> m_list;
  for (size_t i = 0; i <= ms.size();) {
    const size_t c = std::min(ms.find(',', i), ms.size());
    m_list.push_back(std::atoll(ms.substr(i, c - i).c_str()));
    i = c + 1;
  }
  std::printf("%-26s %6s %10s %10s %12s %16s\n", "matrix", "m", "ms/call", "GFLOP/s", "Gweights/s",
              "GFLOP/s/thread*");
  for (const Shape& s : shapes) {
    std::vector<k::QuantizedRows> parts;
    parts.push_back(random_rows(s.format, s.rows, s.cols));
    const k::PackedMatrix w(std::move(parts));
    for (const int64_t m : m_list) {
      std::vector<float> x(static_cast<size_t>(m * s.cols), 0.5f), y(static_cast<size_t>(m * s.rows));
      const double flops = 2.0 * static_cast<double>(m * s.rows * s.cols);
      int reps = 1;
      double best = 1e30, best_cpu = 1e30;
      for (int round = 0; round < 5; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        for (int r = 0; r < reps; ++r) w.matmul_transposed(x.data(), y.data(), m);
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
        best_cpu = std::min(best_cpu, (cpu_seconds() - c0) / reps);
        best = std::min(best, t);
        if (round == 0) reps = std::max(1, static_cast<int>(0.05 / t));
      }
      std::printf("%-26s %6lld %10.3f %10.1f %12.2f %16.1f\n", s.name, static_cast<long long>(m), best * 1e3,
                  flops / best / 1e9, static_cast<double>(s.rows * s.cols) / best / 1e9,
                  flops / (best_cpu / threads) / 1e9);
    }
  }
  return 0;
}
