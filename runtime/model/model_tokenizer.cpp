#include "runtime/model/model_tokenizer.h"

#include "kernels/base/error.h"
#include "runtime/model/gguf_file.h"
#include "runtime/model/model_source.h"
#include "runtime/tokenizer/tokenizer_spec_gguf.h"
#include "runtime/tokenizer/tokenizer_spec_hf.h"

namespace tessera::runtime {

std::unique_ptr<Tokenizer> load_model_tokenizer(const std::filesystem::path& model) {
  TESSERA_CHECK(std::filesystem::exists(model), "model path ", model.string(), " does not exist");
  if (model.extension() == ".gguf") {
    return std::make_unique<Tokenizer>(tokenizer_spec_from_gguf(*GgufFile::open(model)));
  }
  const std::filesystem::path json = model / "tokenizer.json";
  TESSERA_CHECK(std::filesystem::is_directory(model) && std::filesystem::exists(json), "no tokenizer for ",
                model.string(), ": expected a .gguf file or a directory with tokenizer.json");
  const std::filesystem::path config = model / "tokenizer_config.json";
  return std::make_unique<Tokenizer>(tokenizer_spec_from_hf_json(
      json, std::filesystem::exists(config) ? std::optional<std::filesystem::path>(config) : std::nullopt));
}

std::unique_ptr<Tokenizer> load_model_tokenizer_if_any(const std::filesystem::path& model) {
  if (is_dummy_model_path(model)) return nullptr;
  if (std::filesystem::is_directory(model) && !std::filesystem::exists(model / "tokenizer.json")) return nullptr;
  return load_model_tokenizer(model);
}

}  // namespace tessera::runtime
