#pragma once
// The safetensors files of one Hugging Face model directory: either a single model.safetensors, or the shards
// named by model.safetensors.index.json ({"weight_map": {tensor name: shard file}}). Every shard is mapped and
// validated when the checkpoint is opened, and every tensor the index promises is checked to be in its shard,
// so a broken download fails at load time with the shard and the index named, not midway through a forward.
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model/safetensors_file.h"

namespace tessera::runtime {

class SafetensorsCheckpoint {
 public:
  static constexpr std::string_view kSingleFile = "model.safetensors";
  static constexpr std::string_view kIndexFile = "model.safetensors.index.json";

  // Opens `directory`; the index wins when both files exist (as in transformers). Throws tessera::Error.
  static SafetensorsCheckpoint open(const std::filesystem::path& directory);

  struct Location {
    const SafetensorsFile* file = nullptr;
    const SafetensorsTensor* tensor = nullptr;
  };
  // nullptr-filled Location when the checkpoint has no such tensor.
  Location find(std::string_view name) const;

  const std::vector<std::shared_ptr<const SafetensorsFile>>& files() const { return files_; }
  bool sharded() const { return sharded_; }
  // "/models/llama (model.safetensors)" or "/models/llama (4 safetensors shards)", for messages.
  std::string describe() const;

 private:
  std::filesystem::path directory_;
  bool sharded_ = false;
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, Location, std::less<>> locations_;
};

}  // namespace tessera::runtime
