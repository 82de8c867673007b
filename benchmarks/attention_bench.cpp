// Decode attention on the CPU: one new token per sequence attending over its paged KV cache (kernels/cpu/attention.h),
// at SmolLM2-135M's head shapes (9 query heads over 3 KV heads of 64), for a batch of sequences whose blocks are
// scattered through the cache as a server's are. What one layer's attention costs per decode step, without the rest
// of the model. Usage: tessera_bench_attention [--seqs 32] [--context 80,512,2048] [--isa scalar|avx2|avx512]
//                                [--kv-dtype f32|f16] [--prefill]
// --prefill: instead, the prefill of one prompt of each context length (every token attending to those before it),
// in one call (the AVX2 build's tiles of tokens sharing each pass over the cache) against one call per token (the
// decode path, which gives the same bits): ms for each.
// Best of 20 rounds by the wall clock, single-threaded; prints ns per (query head x cached position), the KV bytes
// that one step reads divided by its time, and, for comparison, the ns per query head and position of a plain read of
// the same rows (each KV head's K and V rows once, through the same block tables, no arithmetic but an XOR).
#include <algorithm>
#include <cstddef>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/base/half.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/packed_matrix.h"

namespace k = tessera::kernels::cpu;

namespace {

std::vector<int64_t> parse_list(const char* text) {
  std::vector<int64_t> out;
  for (const char* p = text; *p != '\0';) {
    char* end = nullptr;
    out.push_back(std::strtoll(p, &end, 10));
    if (end == p || out.back() < 1) {
      std::fprintf(stderr, "bad list '%s'\n", text);
      std::exit(2);
    }
    p = *end == ',' ? end + 1 : end;
  }
  return out;
}

struct Free {
  void operator()(std::byte* p) const { std::free(p); }
};

std::byte* aligned_bytes(int64_t count) {
  const auto bytes = static_cast<size_t>((count + 63) / 64 * 64);
  auto* p = static_cast<std::byte*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) {
    std::fprintf(stderr, "out of memory allocating %zu bytes\n", bytes);
    std::exit(1);
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t seqs = 32;
  std::vector<int64_t> contexts = {80, 512, 2048};
  k::KvDtype dtype = k::KvDtype::kF32;
  bool prefill = false;
  for (int i = 1; i < argc; i += 2) {
    if (std::strcmp(argv[i], "--prefill") == 0) {
      prefill = true;
      --i;  // a flag without a value
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", argv[i]);
      return 2;
    }
    if (std::strcmp(argv[i], "--seqs") == 0) {
      seqs = parse_list(argv[i + 1]).front();
    } else if (std::strcmp(argv[i], "--context") == 0) {
      contexts = parse_list(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--kv-dtype") == 0) {
      dtype = k::parse_kv_dtype(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--isa") == 0) {
      k::set_packed_isa_limit(k::parse_packed_isa(argv[i + 1]));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--seqs N] [--context a,b,c] [--isa scalar|avx2|avx512] [--kv-dtype f32|f16] [--prefill]\n",
                   argv[0]);
      return 2;
    }
  }
  constexpr int64_t kHeads = 9, kKvHeads = 3, kDim = 64, kBlock = 16;
  std::printf("decode attention, %lld sequences, %lld query heads over %lld KV heads of %lld, blocks of %lld, isa %s, "
              "%s cache\n",
              static_cast<long long>(seqs), static_cast<long long>(kHeads), static_cast<long long>(kKvHeads),
              static_cast<long long>(kDim), static_cast<long long>(kBlock),
              std::string(k::packed_isa_name(k::packed_isa())).c_str(), std::string(k::kv_dtype_name(dtype)).c_str());
  if (prefill) {
    std::printf("%8s %16s %16s %8s\n", "prompt", "one call ms", "per token ms", "ratio");
  } else {
    std::printf("%8s %12s %18s %12s %14s\n", "context", "step ms", "ns/head/position", "KV GB/s", "read ns/h/p");
  }
  for (const int64_t context : contexts) {
    const int64_t blocks_per_seq = (context + kBlock - 1) / kBlock, num_blocks = seqs * blocks_per_seq;
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    // 64-byte aligned, as runtime/core/tensor.h allocates the engine's cache (a std::vector's 16-byte alignment
    // would split half the vector loads across cache lines and halve the speed measured here).
    const int64_t elements = num_blocks * kBlock * kKvHeads * kDim;
    const auto element_bytes = static_cast<int64_t>(k::kv_dtype_bytes(dtype));
    const std::unique_ptr<std::byte[], Free> kc(aligned_bytes(elements * element_bytes)),
        vc(aligned_bytes(elements * element_bytes));
    for (std::byte* cache : {kc.get(), vc.get()}) {
      for (int64_t i = 0; i < elements; ++i) {
        const float x = normal(rng);
        if (dtype == k::KvDtype::kF16) {
          reinterpret_cast<uint16_t*>(cache)[i] = tessera::float_to_fp16(x).bits;
        } else {
          reinterpret_cast<float*>(cache)[i] = x;
        }
      }
    }
    std::vector<int32_t> tables(static_cast<size_t>(num_blocks));
    for (size_t b = 0; b < tables.size(); ++b) tables[b] = static_cast<int32_t>(b);
    std::shuffle(tables.begin(), tables.end(), rng);  // a server's blocks are anywhere in the cache
    std::vector<float> q(static_cast<size_t>(seqs * kHeads * kDim)), out(q.size());
    for (float& x : q) x = normal(rng);
    const k::KvCacheView cache{kc.get(), vc.get(), dtype, num_blocks, kBlock, kKvHeads, kDim};
    if (prefill) {  // one prompt of `context` tokens, its K and V already in the cache
      std::vector<float> pq(static_cast<size_t>(context * kHeads * kDim)), pout(pq.size());
      for (float& x : pq) x = normal(rng);
      const auto time = [&](int64_t tokens_per_call) {
        double best = 1e30;
        for (int round = 0; round < 5; ++round) {
          const auto start = std::chrono::steady_clock::now();
          for (int64_t t = 0; t < context; t += tokens_per_call) {
            const int64_t n = std::min(tokens_per_call, context - t);
            k::attention(cache, tables.data(), blocks_per_seq, t, n, pq.data() + t * kHeads * kDim, kHeads * kDim,
                         kHeads, 0.125f, pout.data() + t * kHeads * kDim, kHeads * kDim);
          }
          best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        }
        return best;
      };
      const double whole = time(context), per_token = time(1);
      std::printf("%8lld %16.2f %16.2f %7.2fx\n", static_cast<long long>(context), whole, per_token, per_token / whole);
      continue;
    }
    double best_ms = 1e30;
    for (int round = 0; round < 20; ++round) {
      const auto start = std::chrono::steady_clock::now();
      for (int64_t s = 0; s < seqs; ++s) {
        k::attention(cache, tables.data() + s * blocks_per_seq, blocks_per_seq, context - 1, 1,
                     q.data() + s * kHeads * kDim, kHeads * kDim, kHeads, 0.125f, out.data() + s * kHeads * kDim,
                     kHeads * kDim);
      }
      best_ms = std::min(best_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    // The plain read: what the memory system alone takes for the rows one step reads, in the same order per KV head.
    const int64_t row_words = kDim * element_bytes / static_cast<int64_t>(sizeof(uint64_t));
    uint64_t sink = 0;
    double read_ms = 1e30;
    for (int round = 0; round < 20; ++round) {
      const auto start = std::chrono::steady_clock::now();
      for (int64_t s = 0; s < seqs; ++s) {
        const int32_t* table = tables.data() + s * blocks_per_seq;
        for (int64_t kv_head = 0; kv_head < kKvHeads; ++kv_head) {
          for (const std::byte* base : {static_cast<const std::byte*>(kc.get()), static_cast<const std::byte*>(vc.get())}) {
            for (int64_t first = 0; first < context; first += kBlock) {  // a block's rows, kKvHeads * kDim apart
              const std::byte* rows = base + ((table[first / kBlock] * kBlock * kKvHeads + kv_head) * kDim) * element_bytes;
              for (int64_t slot = 0; slot < std::min(kBlock, context - first); ++slot) {
                const std::byte* row = rows + slot * kKvHeads * kDim * element_bytes;
                for (int64_t w = 0; w < row_words; ++w) {
                  uint64_t word;
                  std::memcpy(&word, row + w * static_cast<int64_t>(sizeof(word)), sizeof(word));
                  sink ^= word;
                }
              }
            }
          }
        }
      }
      read_ms = std::min(read_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    const double head_positions = static_cast<double>(seqs * kHeads * context);
    const double kv_bytes = static_cast<double>(seqs * context * kKvHeads * kDim * 2 * element_bytes);
    std::printf("%8lld %12.3f %18.2f %12.2f %14.2f%s\n", static_cast<long long>(context), best_ms,
                best_ms * 1e6 / head_positions, kv_bytes / best_ms / 1e6, read_ms * 1e6 / head_positions,
                sink == 0x5eed ? " " : "");  // uses the sink, so that the reads are not optimised away
  }
  return 0;
}
