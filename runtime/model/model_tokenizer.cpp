#include "runtime/model/model_tokenizer.h"

#include "kernels/base/error.h"
#include "runtime/model/gguf_file.h"
#include "runtime/tokenizer/tokenizer_spec_gguf.h"

namespace tessera::runtime {

std::unique_ptr<Tokenizer> load_model_tokenizer(const std::filesystem::path& model) {
  TESSERA_CHECK(std::filesystem::exists(model), "model path ", model.string(), " does not exist");
  if (model.extension() == ".gguf") {
    return std::make_unique<Tokenizer>(tokenizer_spec_from_gguf(*GgufFile::open(model)));
  }
  fail("no tokenizer for ", model.string(), ": Hugging Face tokenizer.json directories are not supported yet");
}

}  // namespace tessera::runtime
