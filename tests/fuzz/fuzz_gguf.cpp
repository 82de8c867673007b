// libFuzzer target: arbitrary bytes through the GGUF parser and, when they parse, through everything that
// reads a GgufFile (tensor rows and columns, model config, tokenizer spec, weight source). tessera::Error is
// the expected answer to bad input; any other exception, crash or sanitizer report is a bug.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/base/error.h"
#include "runtime/model/gguf_file.h"
#include "runtime/model/gguf_weight_source.h"
#include "runtime/model/model_config_gguf.h"
#include "runtime/tokenizer/tokenizer_spec_gguf.h"

namespace {

using namespace tessera::runtime;

void read_tensors(const GgufFile& file) {
  std::vector<float> buffer;
  for (const GgufTensorInfo& tensor : file.tensors()) {
    if (!ggml_type_traits(tensor.type).dequantizable) continue;
    const int64_t columns = tensor.columns();
    buffer.resize(static_cast<size_t>(columns));
    for (int64_t row = 0; row < tensor.rows(); ++row) file.read_rows(tensor, row, row + 1, buffer.data());
    // A column slice that starts and ends inside blocks.
    const int64_t begin = columns / 3, end = columns - columns / 4;
    buffer.resize(static_cast<size_t>(tensor.rows() * (end - begin)));
    file.read_columns(tensor, begin, end, buffer.data());
  }
}

void read_model(const std::shared_ptr<const GgufFile>& file) {
  try {
    (void)tokenizer_spec_from_gguf(*file);
  } catch (const tessera::Error&) {
  }
  const ModelConfig config = model_config_from_gguf(*file);
  // Configs implying more than a few million parameters cannot come from these small inputs' tensors, and the
  // weight source would only reject them; skip the work.
  if (config.parameter_count() > (int64_t{1} << 24)) return;
  GgufWeightSource weights(file, config);
  std::vector<float> buffer;
  for (int layer = 0; layer < config.num_layers; ++layer) {
    for (WeightKind kind : {WeightKind::kAttnQ, WeightKind::kAttnK}) {
      const WeightId id{kind, layer};
      const WeightInfo info = weights.info(id);
      buffer.resize(static_cast<size_t>(info.shape[0] * info.shape[1]));
      weights.read_rows(id, 0, info.shape[0], buffer.data());
      weights.read_columns(id, 0, info.shape[1], buffer.data());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::shared_ptr<const GgufFile> file;
  try {
    file = GgufFile::parse(bytes, "fuzz.gguf");
  } catch (const tessera::Error&) {
    return 0;
  }
  try {
    read_tensors(*file);
  } catch (const tessera::Error&) {
  }
  try {
    read_model(file);
  } catch (const tessera::Error&) {
  }
  return 0;
}
