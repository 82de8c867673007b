#pragma once
// The tensor storage types of GGUF files (ggml's type ids) and their block layouts.
#include <cstdint>
#include <optional>
#include <string_view>

namespace tessera::runtime {

enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15, kBF16 = 30,
};

struct GgmlTypeTraits {
  std::string_view name;    // "Q4_1"
  int64_t block_elements;   // elements per block (1 for plain float types)
  int64_t block_bytes;      // bytes per block
  bool dequantizable;       // Tessera can decode it
};

// nullopt for type ids Tessera does not know.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id);
GgmlTypeTraits ggml_type_traits(GgmlType type);  // for known types

}  // namespace tessera::runtime
