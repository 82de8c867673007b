#pragma once
// A weight matrix kept in a compact format for the CPU matrix products, and y = x · wᵀ on it.
//
// Why: decode multiplies one row (or a few) by every weight matrix, so each step streams all the weights
// from memory and the speed is set by their bytes, not by arithmetic. f32 weights cost 4 bytes each;
//   kBF16: 2 bytes (bf16, round to nearest even)                       — 2x fewer bytes, relative error <= 2^-9
//   kQ8_0: 1.125 bytes (int8 in blocks of 32 along a row, one f32 scale — llama.cpp's Q8_0 with an f32 scale)
//                                                                      — 3.6x fewer bytes, error <= scale / 2
// Both are lossy against the f32 model, so f32 stays the default and the exact reference.
//   kNative: the model file's own blocks (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K, ...: QuantizedRows), kept as they are
//   (0.5625 to 1.0625 bytes per weight for those) and decoded on the fly to the same f32 values the loader's
//   dequantization gives: exact with respect to the file, only the f32 summation order differs from kF32.
//
// kNative, any number of rows of x: the block kernels (block_gemv.h) decode each weight row once per group of rows of
// x and take its dot products with all of them (AVX-512 or AVX2+FMA when the CPU has them, chosen at run time; a
// scalar loop otherwise; the AVX2 build decodes into a buffer from 16 rows on), split over rows of w across
// parallel_for's threads. The same arithmetic per output for every m, so a row's result does not depend on the batch
// it shares a call with (batch invariance, bit for bit: tests/kernels/batch_invariance.h).
// kBF16 / kQ8_0: few rows (m <= kPackedGemvMaxRows) take the fused dot products; more rows (prefill) widen tiles of w
// to f32 and multiply them through BLAS, where the arithmetic, not the bytes, dominates (not batch invariant).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/cpu/quantized_rows.h"

namespace tessera::kernels::cpu {

enum class WeightFormat : uint8_t { kF32, kBF16, kQ8_0, kNative };

inline constexpr int64_t kQ8BlockSize = 32;
inline constexpr int64_t kPackedGemvMaxRows = 8;

std::string_view weight_format_name(WeightFormat format);  // "f32", "bf16", "q8_0", "native"
// Parses "f32", "bf16", "q8_0", "native"; throws tessera::Error naming the bad value and the accepted ones.
WeightFormat parse_weight_format(std::string_view name);

class PackedMatrix {
 public:
  PackedMatrix() = default;
  // Takes w[rows, cols] (row-major f32, rows * cols values) and keeps it in `format`; f32 keeps the vector as
  // it is (no copy). kQ8_0 needs cols to be a multiple of kQ8BlockSize (throws tessera::Error otherwise).
  PackedMatrix(std::vector<float> w, int64_t rows, int64_t cols, WeightFormat format);
  // kNative: the rows of `parts` one after the other (a fused matrix may mix formats, e.g. Q4_K query rows over
  // Q6_K value rows), kept as they are. Every part must have the same cols and hold exactly its rows' bytes
  // (throws tessera::Error otherwise).
  explicit PackedMatrix(std::vector<QuantizedRows> parts);

  WeightFormat format() const { return format_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  bool empty() const { return rows_ == 0 || cols_ == 0; }
  size_t bytes() const;

  // Row r widened back to f32 into out[cols] (the values the products use).
  void unpack_row(int64_t r, float* out) const;
  // kNative: the block format of row r.
  QuantFormat native_format(int64_t r) const;
  // The f32 values; only for kF32 (throws otherwise).
  const float* f32() const;

  // y[m, rows] = x[m, cols] · wᵀ (+ bias[rows] on every row when bias is not null). y must not alias x.
  void matmul_transposed(const float* x, float* y, int64_t m, const float* bias = nullptr) const;

 private:
  // kNative: rows [row_begin, row_end) of the matrix, all in one format.
  struct NativeSegment {
    int64_t row_begin = 0, row_end = 0;
    QuantFormat format = QuantFormat::kF32;
    int64_t row_bytes = 0;
    std::vector<std::byte> bytes;
  };

  void gemv_rows(const float* x, float* y, int64_t m, int64_t row_begin, int64_t row_end) const;
  void native_gemv_rows(const float* x, float* y, int64_t m, int64_t row_begin, int64_t row_end) const;
  void unpack_rows(int64_t row_begin, int64_t count, float* out) const;
  const NativeSegment& segment_of(int64_t r) const;
  void tiled_gemm(const float* x, float* y, int64_t m) const;

  WeightFormat format_ = WeightFormat::kF32;
  int64_t rows_ = 0, cols_ = 0;
  std::vector<float> f32_;       // kF32
  std::vector<uint16_t> bf16_;   // kBF16: bf16 bit patterns
  std::vector<int8_t> q8_;       // kQ8_0: rows * cols quants
  std::vector<float> q8_scale_;  // kQ8_0: rows * cols / 32 scales, row-major
  std::vector<NativeSegment> native_;  // kNative, in row order
};

// Instruction sets of the packed kernels, in increasing order, chosen at run time from the CPU's flags (cpuid): the
// best one the CPU supports runs, unless the environment variable TESSERA_CPU_ISA (scalar, avx2 or avx512) forces
// one, and never above a limit that tests and benchmarks can lower (set_packed_isa_limit returns the previous one).
enum class PackedIsa : uint8_t { kScalar, kAvx2, kAvx512 };
std::string_view packed_isa_name(PackedIsa isa);  // "scalar", "avx2", "avx512"
// Parses "scalar", "avx2", "avx512"; throws tessera::Error naming the bad value and the accepted ones.
PackedIsa parse_packed_isa(std::string_view name);
PackedIsa best_packed_isa();  // the best this CPU runs
// What `value` (TESSERA_CPU_ISA's, null or empty when unset) asks for: best_packed_isa() when unset, else the ISA it
// names; throws tessera::Error when the name is unknown or this CPU cannot run that ISA.
PackedIsa forced_packed_isa(const char* value);
PackedIsa set_packed_isa_limit(PackedIsa limit);
// What runs now: min(limit, forced_packed_isa(TESSERA_CPU_ISA)); throws (every call) when TESSERA_CPU_ISA is bad.
PackedIsa packed_isa();

// How the native format's products take x: f32 (the default, exact), or quantized to int8 per block of 32 with
// integer block dot products (block_gemv_int8.h: lossy, opt-in, AVX2 and up, Q4_0 / Q4_1 / Q8_0 matrices; the other
// formats and ISAs keep f32). TESSERA_CPU_ACTIVATIONS=f32|int8 sets it for the process, the commands' --cpu-activations
// overrides it (launcher/config_overrides.h), and so can tests (set_activation_format returns the previous value).
enum class ActivationFormat : uint8_t { kF32, kInt8 };
std::string_view activation_format_name(ActivationFormat format);  // "f32", "int8"
// Parses "f32" or "int8" (null or empty: f32); throws tessera::Error naming the bad value and the accepted ones.
ActivationFormat parse_activation_format(const char* value);
ActivationFormat set_activation_format(ActivationFormat format);
ActivationFormat activation_format();  // throws (every call) when TESSERA_CPU_ACTIVATIONS is bad

// The path the native products take, for startup lines and `tessera doctor`: "avx2 (best on this CPU: avx2),
// activations f32", naming TESSERA_CPU_ISA when it forces the ISA, and " (avx512 vnni dot products)" after
// "activations int8" where the int8 products take the VNNI build. Throws as packed_isa() / activation_format().
std::string describe_cpu_kernels();

}  // namespace tessera::kernels::cpu
