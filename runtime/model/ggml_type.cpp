#include "runtime/model/ggml_type.h"

#include "kernels/base/error.h"

namespace tessera::runtime {

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id) {
  // Block layouts from ggml-common.h. Q8_1 and Q8_K are ggml's activation formats: known (so a file holding
  // them parses and its sizes validate) but never stored as weights, so Tessera does not decode them.
  switch (static_cast<GgmlType>(type_id)) {
    case GgmlType::kF32: return GgmlTypeTraits{"F32", 1, 4, true};
    case GgmlType::kF16: return GgmlTypeTraits{"F16", 1, 2, true};
    case GgmlType::kBF16: return GgmlTypeTraits{"BF16", 1, 2, true};
    case GgmlType::kQ4_0: return GgmlTypeTraits{"Q4_0", 32, 18, true};
    case GgmlType::kQ4_1: return GgmlTypeTraits{"Q4_1", 32, 20, true};
    case GgmlType::kQ5_0: return GgmlTypeTraits{"Q5_0", 32, 22, true};
    case GgmlType::kQ5_1: return GgmlTypeTraits{"Q5_1", 32, 24, true};
    case GgmlType::kQ8_0: return GgmlTypeTraits{"Q8_0", 32, 34, true};
    case GgmlType::kQ8_1: return GgmlTypeTraits{"Q8_1", 32, 36, false};
    case GgmlType::kQ2_K: return GgmlTypeTraits{"Q2_K", 256, 84, true};
    case GgmlType::kQ3_K: return GgmlTypeTraits{"Q3_K", 256, 110, true};
    case GgmlType::kQ4_K: return GgmlTypeTraits{"Q4_K", 256, 144, true};
    case GgmlType::kQ5_K: return GgmlTypeTraits{"Q5_K", 256, 176, true};
    case GgmlType::kQ6_K: return GgmlTypeTraits{"Q6_K", 256, 210, true};
    case GgmlType::kQ8_K: return GgmlTypeTraits{"Q8_K", 256, 292, false};
  }
  return std::nullopt;
}

GgmlTypeTraits ggml_type_traits(GgmlType type) {
  const auto traits = ggml_type_traits(static_cast<uint32_t>(type));
  TESSERA_CHECK(traits.has_value(), "unknown ggml type id ", static_cast<uint32_t>(type));
  return *traits;
}

}  // namespace tessera::runtime
