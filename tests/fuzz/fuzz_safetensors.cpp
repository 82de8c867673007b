// Fuzzes the safetensors header parser and the range readers on arbitrary bytes: anything may be rejected
// with tessera::Error, nothing may crash, hang or read outside the input (run under ASan/UBSan).
// Seeds: tests/fuzz/corpus/fuzz_safetensors/.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/model/safetensors_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::runtime::SafetensorsFile;
  using tessera::runtime::safetensors_dtype_traits;
  try {
    const auto file = SafetensorsFile::parse(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz");
    std::vector<float> out;
    for (const auto& tensor : file->tensors()) {
      if (!safetensors_dtype_traits(tensor.dtype).decodable) continue;
      // Element count is bounded by the input size (validated), so this allocation is too.
      out.resize(static_cast<size_t>(tensor.numel()));
      file->read_rows(tensor, 0, tensor.rows(), out.data());
      if (tensor.columns() > 1) file->read_columns(tensor, 1, tensor.columns(), out.data());
    }
  } catch (const tessera::Error&) {
    // Rejected input is the expected outcome for most of the space.
  }
  return 0;
}
