#include "runtime/model/model_source.h"

#include "kernels/base/error.h"
#include "runtime/model/dummy_weight_source.h"
#include "runtime/model/gguf_weight_source.h"
#include "runtime/model/hf_config.h"
#include "runtime/model/model_config_gguf.h"
#include "runtime/model/hf_weight_source.h"
#include "runtime/model/model_presets.h"

namespace tessera::runtime {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kDummyPrefix = "dummy:";
}  // namespace

bool is_dummy_model_path(const fs::path& path) { return path.string().starts_with(kDummyPrefix); }

ModelSource open_model_source(const fs::path& path) {
  if (is_dummy_model_path(path)) {
    const std::string preset = path.string().substr(kDummyPrefix.size());
    std::optional<ModelConfig> config = model_preset(preset);
    if (!config) {
      std::string known;
      for (const std::string& name : model_preset_names()) known += (known.empty() ? "" : ", ") + name;
      fail("unknown model preset '", preset, "' in ", path.string(), " (known: ", known, ")");
    }
    ModelSource source;
    source.config = *config;
    source.weights = std::make_unique<DummyWeightSource>(*config);
    return source;
  }
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  TESSERA_CHECK(fs::exists(status), "model path ", path.string(), " does not exist");
  if (fs::is_directory(status)) {
    ModelSource source;
    source.config = model_config_from_hf(path);
    source.weights = HfWeightSource::open(path, source.config);
    return source;
  }
  if (path.extension() == ".gguf") {
    std::shared_ptr<const GgufFile> file = GgufFile::open(path);
    ModelSource source;
    source.config = model_config_from_gguf(*file);
    source.weights = std::make_unique<GgufWeightSource>(file, source.config);
    return source;
  }
  fail("model path ", path.string(),
       " is neither a Hugging Face model directory (config.json + safetensors) nor a .gguf file");
}

}  // namespace tessera::runtime
