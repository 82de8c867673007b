#include "kernels/cpu/packed_matrix.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <span>

#include "kernels/base/error.h"
#include "kernels/base/half.h"
#include "kernels/cpu/block_gemv.h"
#include "kernels/cpu/block_gemv_int8.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/packed_dot.h"
#include "kernels/cpu/parallel_for.h"

namespace tessera::kernels::cpu {
namespace {

std::atomic<PackedIsa> isa_limit{PackedIsa::kAvx512};

PackedIsa best_supported_isa() {
  if (packed::cpu_has_avx512()) return PackedIsa::kAvx512;
  if (packed::cpu_has_avx2_fma()) return PackedIsa::kAvx2;
  return PackedIsa::kScalar;
}

using DotBf16 = float (*)(const float*, const uint16_t*, int64_t);
using DotQ8 = float (*)(const float*, const int8_t*, const float*, int64_t);

DotBf16 dot_bf16_for(PackedIsa isa) {
  switch (isa) {
    case PackedIsa::kAvx512: return packed::dot_bf16_avx512;
    case PackedIsa::kAvx2: return packed::dot_bf16_avx2;
    case PackedIsa::kScalar: break;
  }
  return packed::dot_bf16_scalar;
}

DotQ8 dot_q8_for(PackedIsa isa) {
  switch (isa) {
    case PackedIsa::kAvx512: return packed::dot_q8_avx512;
    case PackedIsa::kAvx2: return packed::dot_q8_avx2;
    case PackedIsa::kScalar: break;
  }
  return packed::dot_q8_scalar;
}

// The block kernels for `format` under `isa`: the vector builds where they can decode the format, else portable.
using BlockGemv = void (*)(QuantFormat, const std::byte*, int64_t, int64_t, const float*, int64_t, float*, int64_t);
using BlockDecode = void (*)(QuantFormat, const std::byte*, int64_t, float*);

PackedIsa block_isa(QuantFormat format, PackedIsa isa) {
  if (!packed::block_simd_supported(format) || !packed::cpu_has_f16c()) return PackedIsa::kScalar;
  return isa;
}

BlockGemv block_gemv_for(QuantFormat format, PackedIsa isa) {
  switch (block_isa(format, isa)) {
    case PackedIsa::kAvx512: return packed::block_gemv_avx512;
    case PackedIsa::kAvx2: return packed::block_gemv_avx2;
    case PackedIsa::kScalar: break;
  }
  return packed::block_gemv_scalar;
}

// The int8-activation kernel under `isa`, or nullptr where the matrix products keep f32 activations (the default, or
// an ISA below AVX2). With AVX-512 VNNI its block dot is one instruction; the results are the AVX2 kernel's.
BlockGemv int8_block_gemv_for(PackedIsa isa) {
  if (activation_format() != ActivationFormat::kInt8 || isa < PackedIsa::kAvx2 || !packed::cpu_has_f16c()) {
    return nullptr;
  }
  if (isa >= PackedIsa::kAvx512 && packed::cpu_has_avx512_vnni()) return packed::block_gemv_int8_vnni;
  return packed::block_gemv_int8_avx2;
}

void dequantize_blocks(QuantFormat format, const std::byte* w, int64_t count, float* out) {
  dequantize(format, std::span<const std::byte>(w, static_cast<size_t>(quantized_bytes(format, count))), count, out);
}

BlockDecode block_decode_for(QuantFormat format, PackedIsa isa) {
  switch (block_isa(format, isa)) {
    case PackedIsa::kAvx512: return packed::block_decode_avx512;
    case PackedIsa::kAvx2: return packed::block_decode_avx2;
    case PackedIsa::kScalar: break;
  }
  return dequantize_blocks;
}

// Rows of w per parallel chunk in the GEMV: enough work (>= ~16K weights) to be worth a thread's wake-up.
int64_t gemv_min_rows(int64_t cols) { return std::max<int64_t>(1, (16 * 1024) / std::max<int64_t>(cols, 1)); }

// Rows of w widened per tile in the prefill path: up to 8 MB of f32, so that a decoder layer's matrices are one
// tile each (one BLAS call with its full width) and only a vocabulary-sized LM head is cut.
int64_t tile_rows(int64_t cols) { return std::max<int64_t>(16, (2 * 1024 * 1024) / std::max<int64_t>(cols, 1)); }

// The widened tile, kept between calls: a fresh multi-megabyte allocation per call would be fresh pages to fault in.
std::vector<float>& tile_scratch(size_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < floats) scratch.resize(floats);
  return scratch;
}

// llama.cpp's Q8_0 rule: scale = max|w| / 127, q = round(w / scale).
void quantize_q8_block(const float* w, int8_t* q, float* scale) {
  float amax = 0.0f;
  for (int i = 0; i < kQ8BlockSize; ++i) amax = std::max(amax, std::fabs(w[i]));
  const float d = amax / 127.0f;
  const float inverse = d > 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < kQ8BlockSize; ++i) {
    const float v = w[i] * inverse;  // in [-127, 127]: round half away from zero, as llama.cpp's roundf
    q[i] = static_cast<int8_t>(static_cast<int>(v + std::copysign(0.5f, v)));  // conversion truncates
  }
  *scale = d;
}

}  // namespace

std::string_view weight_format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::kF32: return "f32";
    case WeightFormat::kBF16: return "bf16";
    case WeightFormat::kQ8_0: return "q8_0";
    case WeightFormat::kNative: return "native";
  }
  return "?";
}

WeightFormat parse_weight_format(std::string_view name) {
  for (WeightFormat f : {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kQ8_0, WeightFormat::kNative}) {
    if (name == weight_format_name(f)) return f;
  }
  fail("unknown weight format '", name, "' (expected f32, bf16, q8_0 or native)");
}

std::string_view packed_isa_name(PackedIsa isa) {
  switch (isa) {
    case PackedIsa::kScalar: return "scalar";
    case PackedIsa::kAvx2: return "avx2";
    case PackedIsa::kAvx512: return "avx512";
  }
  return "?";
}

PackedIsa parse_packed_isa(std::string_view name) {
  for (PackedIsa isa : {PackedIsa::kScalar, PackedIsa::kAvx2, PackedIsa::kAvx512}) {
    if (name == packed_isa_name(isa)) return isa;
  }
  fail("unknown CPU instruction set '", name, "' (expected scalar, avx2 or avx512)");
}

PackedIsa best_packed_isa() { return best_supported_isa(); }

PackedIsa forced_packed_isa(const char* value) {
  if (value == nullptr || *value == '\0') return best_supported_isa();
  const PackedIsa isa = parse_packed_isa(value);
  TESSERA_CHECK(isa <= best_supported_isa(), "TESSERA_CPU_ISA=", value, ": this CPU cannot run ",
                packed_isa_name(isa), " (cpuid: the best it runs is ", packed_isa_name(best_supported_isa()), ")");
  return isa;
}

PackedIsa set_packed_isa_limit(PackedIsa limit) { return isa_limit.exchange(limit); }

std::string_view activation_format_name(ActivationFormat format) {
  return format == ActivationFormat::kInt8 ? "int8" : "f32";
}

ActivationFormat parse_activation_format(const char* value) {
  if (value == nullptr || *value == '\0' || std::string_view(value) == "f32") return ActivationFormat::kF32;
  if (std::string_view(value) == "int8") return ActivationFormat::kInt8;
  fail("TESSERA_CPU_ACTIVATIONS='", value, "' (expected f32 or int8)");
}

namespace {
// -1: not yet read from the environment.
std::atomic<int> activation_override{-1};
}  // namespace

ActivationFormat set_activation_format(ActivationFormat format) {
  const ActivationFormat previous = activation_format();
  activation_override.store(static_cast<int>(format));
  return previous;
}

ActivationFormat activation_format() {
  const int value = activation_override.load();
  if (value >= 0) return static_cast<ActivationFormat>(value);
  static const ActivationFormat from_environment = parse_activation_format(std::getenv("TESSERA_CPU_ACTIVATIONS"));
  return from_environment;
}

std::string describe_cpu_kernels() {
  const char* forced = std::getenv("TESSERA_CPU_ISA");
  std::string text = std::string(packed_isa_name(packed_isa())) + " (best on this CPU: " +
                     std::string(packed_isa_name(best_packed_isa()));
  if (forced != nullptr && *forced != '\0') text += std::string("; forced by TESSERA_CPU_ISA=") + forced;
  text += "), activations " + std::string(activation_format_name(activation_format()));
  if (int8_block_gemv_for(packed_isa()) == packed::block_gemv_int8_vnni) text += " (avx512 vnni dot products)";
  return text;
}

PackedIsa packed_isa() {
  // Read once; a bad value throws here, and again on every call (a throwing static initialization is retried).
  static const PackedIsa forced = forced_packed_isa(std::getenv("TESSERA_CPU_ISA"));
  return std::min(isa_limit.load(), forced);
}

PackedMatrix::PackedMatrix(std::vector<float> w, int64_t rows, int64_t cols, WeightFormat format)
    : format_(format), rows_(rows), cols_(cols) {
  TESSERA_CHECK(rows >= 0 && cols >= 0, "PackedMatrix: negative shape [", rows, ", ", cols, "]");
  TESSERA_CHECK(static_cast<int64_t>(w.size()) == rows * cols, "PackedMatrix: ", w.size(), " values for a [", rows,
                ", ", cols, "] matrix");
  TESSERA_CHECK(rows <= std::numeric_limits<int>::max() && cols <= std::numeric_limits<int>::max(),
                "PackedMatrix: shape [", rows, ", ", cols, "] too large for BLAS");
  const int64_t n = rows * cols;
  switch (format) {
    case WeightFormat::kF32:
      f32_ = std::move(w);
      break;
    case WeightFormat::kBF16:
      bf16_.resize(static_cast<size_t>(n));
      parallel_for(n, 1 << 16, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) bf16_[i] = float_to_bf16(w[i]).bits;
      });
      break;
    case WeightFormat::kQ8_0: {
      TESSERA_CHECK(cols % kQ8BlockSize == 0, "PackedMatrix: q8_0 needs a row length divisible by ", kQ8BlockSize,
                    ", got [", rows, ", ", cols, "]");
      q8_.resize(static_cast<size_t>(n));
      q8_scale_.resize(static_cast<size_t>(n / kQ8BlockSize));
      parallel_for(n / kQ8BlockSize, 1 << 11, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          quantize_q8_block(w.data() + b * kQ8BlockSize, q8_.data() + b * kQ8BlockSize, q8_scale_.data() + b);
        }
      });
      break;
    }
    case WeightFormat::kNative:
      fail("PackedMatrix: the native format is built from the file's blocks (QuantizedRows), not from f32 values");
  }
}

PackedMatrix::PackedMatrix(std::vector<QuantizedRows> parts) : format_(WeightFormat::kNative) {
  TESSERA_CHECK(!parts.empty(), "PackedMatrix: a native matrix needs at least one part");
  cols_ = parts.front().cols;
  TESSERA_CHECK(cols_ >= 0 && cols_ <= std::numeric_limits<int>::max(), "PackedMatrix: ", cols_, " columns");
  for (QuantizedRows& part : parts) {
    TESSERA_CHECK(part.cols == cols_, "PackedMatrix: native parts of ", cols_, " and ", part.cols, " columns");
    TESSERA_CHECK(part.rows >= 0, "PackedMatrix: native part of ", part.rows, " rows");
    const int64_t row_bytes = part.row_bytes();  // checks that the rows are whole blocks
    TESSERA_CHECK(static_cast<int64_t>(part.bytes.size()) == part.rows * row_bytes, "PackedMatrix: native part of ",
                  part.rows, " ", quant_format_name(part.format), " rows of ", cols_, " columns holds ",
                  part.bytes.size(), " bytes, expected ", part.rows * row_bytes);
    if (part.rows == 0) continue;
    native_.push_back({rows_, rows_ + part.rows, part.format, row_bytes, std::move(part.bytes)});
    rows_ += part.rows;
  }
  TESSERA_CHECK(rows_ <= std::numeric_limits<int>::max(), "PackedMatrix: ", rows_, " rows too many for BLAS");
}

size_t PackedMatrix::bytes() const {
  size_t native = 0;
  for (const NativeSegment& s : native_) native += s.bytes.size();
  return f32_.size() * sizeof(float) + bf16_.size() * sizeof(uint16_t) + q8_.size() + q8_scale_.size() * sizeof(float) +
         native;
}

const PackedMatrix::NativeSegment& PackedMatrix::segment_of(int64_t r) const {
  // A handful of segments (one per fused part): a linear search is as fast as anything.
  for (const NativeSegment& s : native_) {
    if (r < s.row_end) return s;
  }
  fail("PackedMatrix: row ", r, " outside the native matrix's ", rows_, " rows");
}

QuantFormat PackedMatrix::native_format(int64_t r) const {
  TESSERA_CHECK(format_ == WeightFormat::kNative, "PackedMatrix::native_format() on a ", weight_format_name(format_),
                " matrix");
  TESSERA_CHECK(r >= 0 && r < rows_, "PackedMatrix::native_format: row ", r, " outside [0, ", rows_, ")");
  return segment_of(r).format;
}

const float* PackedMatrix::f32() const {
  TESSERA_CHECK(format_ == WeightFormat::kF32, "PackedMatrix::f32() on a ", weight_format_name(format_), " matrix");
  return f32_.data();
}

void PackedMatrix::unpack_row(int64_t r, float* out) const {
  TESSERA_CHECK(r >= 0 && r < rows_, "PackedMatrix::unpack_row: row ", r, " outside [0, ", rows_, ")");
  switch (format_) {
    case WeightFormat::kF32:
      std::copy_n(f32_.data() + r * cols_, cols_, out);
      break;
    case WeightFormat::kBF16:
      for (int64_t i = 0; i < cols_; ++i) out[i] = bf16_to_float(bf16{bf16_[r * cols_ + i]});
      break;
    case WeightFormat::kQ8_0: {
      const int8_t* q = q8_.data() + r * cols_;
      const float* scale = q8_scale_.data() + r * (cols_ / kQ8BlockSize);
      for (int64_t i = 0; i < cols_; ++i) out[i] = scale[i / kQ8BlockSize] * static_cast<float>(q[i]);
      break;
    }
    case WeightFormat::kNative: unpack_rows(r, 1, out); break;
  }
}

void PackedMatrix::unpack_rows(int64_t row_begin, int64_t count, float* out) const {
  if (format_ != WeightFormat::kNative) {
    for (int64_t r = 0; r < count; ++r) unpack_row(row_begin + r, out + r * cols_);
    return;
  }
  const PackedIsa isa = packed_isa();
  for (int64_t r = row_begin; r < row_begin + count;) {
    const NativeSegment& s = segment_of(r);
    const int64_t n = std::min(row_begin + count, s.row_end) - r;  // rows of this segment: contiguous blocks
    block_decode_for(s.format, isa)(s.format, s.bytes.data() + (r - s.row_begin) * s.row_bytes, n * cols_,
                                    out + (r - row_begin) * cols_);
    r += n;
  }
}

void PackedMatrix::native_gemv_rows(const float* x, float* y, int64_t m, int64_t row_begin, int64_t row_end) const {
  const PackedIsa isa = packed_isa();
  const BlockGemv int8_gemv = int8_block_gemv_for(isa);
  for (const NativeSegment& s : native_) {
    const int64_t begin = std::max(row_begin, s.row_begin), end = std::min(row_end, s.row_end);
    if (begin >= end) continue;
    const BlockGemv gemv =
        int8_gemv != nullptr && packed::block_int8_supported(s.format) ? int8_gemv : block_gemv_for(s.format, isa);
    gemv(s.format, s.bytes.data() + (begin - s.row_begin) * s.row_bytes, end - begin, cols_, x, m, y + begin, rows_);
  }
}

void PackedMatrix::gemv_rows(const float* x, float* y, int64_t m, int64_t row_begin, int64_t row_end) const {
  if (format_ == WeightFormat::kNative) return native_gemv_rows(x, y, m, row_begin, row_end);
  const PackedIsa isa = packed_isa();
  const int64_t k = cols_, blocks = cols_ / kQ8BlockSize;
  if (format_ == WeightFormat::kBF16) {
    const DotBf16 dot = dot_bf16_for(isa);
    // The weight row stays in L1 while every row of x takes its dot product with it.
    for (int64_t r = row_begin; r < row_end; ++r) {
      for (int64_t i = 0; i < m; ++i) y[i * rows_ + r] += dot(x + i * k, bf16_.data() + r * k, k);
    }
  } else {
    const DotQ8 dot = dot_q8_for(isa);
    for (int64_t r = row_begin; r < row_end; ++r) {
      for (int64_t i = 0; i < m; ++i) {
        y[i * rows_ + r] += dot(x + i * k, q8_.data() + r * k, q8_scale_.data() + r * blocks, k);
      }
    }
  }
}

void PackedMatrix::tiled_gemm(const float* x, float* y, int64_t m) const {
  const int64_t tile = std::min(rows_, tile_rows(cols_));
  std::vector<float>& widened = tile_scratch(static_cast<size_t>(tile * cols_));
  for (int64_t r0 = 0; r0 < rows_; r0 += tile) {
    const int64_t count = std::min(tile, rows_ - r0);
    // Widened on this thread: BLAS's own threads are still spinning from the previous tile, and a second pool
    // competing with them for the cores costs more than the widening itself (~1% of the GEMM's work).
    unpack_rows(r0, count, widened.data());
    // y[:, r0:r0+count] += x · tileᵀ, written in place through BLAS's leading dimension.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(count),
                static_cast<int>(cols_), 1.0f, x, static_cast<int>(cols_), widened.data(), static_cast<int>(cols_),
                1.0f, y + r0, static_cast<int>(rows_));
  }
}

void PackedMatrix::matmul_transposed(const float* x, float* y, int64_t m, const float* bias) const {
  TESSERA_CHECK(m >= 0, "PackedMatrix::matmul_transposed: negative row count ", m);
  TESSERA_CHECK(m <= std::numeric_limits<int>::max(), "PackedMatrix::matmul_transposed: ", m, " rows is too many");
  if (format_ == WeightFormat::kF32) {
    cpu::matmul_transposed(x, f32_.data(), y, m, rows_, cols_, bias);
    return;
  }
  if (m == 0 || rows_ == 0) return;
  TESSERA_CHECK(x != nullptr && y != nullptr, "PackedMatrix::matmul_transposed: null x or y");
  // Both paths accumulate onto y: start from the bias (as torch's addmm does) or zero.
  for (int64_t i = 0; i < m; ++i) {
    if (bias != nullptr) {
      std::copy_n(bias, rows_, y + i * rows_);
    } else {
      std::fill_n(y + i * rows_, rows_, 0.0f);
    }
  }
  if (cols_ == 0) return;
  // native: the block kernels for every m (they tile the rows of x themselves), so that a row's result never depends
  // on the batch it came in (block_gemv.h: batch invariance). The repacked formats switch to BLAS above
  // kPackedGemvMaxRows rows.
  if (format_ == WeightFormat::kNative || m <= kPackedGemvMaxRows) {
    parallel_for(rows_, gemv_min_rows(cols_ * std::min<int64_t>(m, kPackedGemvMaxRows)),
                 [&](int64_t begin, int64_t end) { gemv_rows(x, y, m, begin, end); });
  } else {
    tiled_gemm(x, y, m);
  }
}

}  // namespace tessera::kernels::cpu
