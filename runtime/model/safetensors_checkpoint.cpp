#include "runtime/model/safetensors_checkpoint.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "kernels/base/error.h"

namespace tessera::runtime {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_index(const fs::path& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  TESSERA_CHECK(in.good(), "cannot read safetensors index ", index_path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& error) {
    fail(index_path.string(), ": not valid JSON: ", error.what());
  }
}

// Shard names come from the file; only plain names inside the model directory are accepted.
void check_shard_name(const fs::path& index_path, const std::string& tensor, const std::string& shard) {
  const fs::path name(shard);
  TESSERA_CHECK(!shard.empty() && name == name.filename() && shard != "." && shard != "..", index_path.string(),
                ": tensor '", tensor, "' maps to '", shard, "', which is not a file name in the model directory");
}

}  // namespace

SafetensorsCheckpoint SafetensorsCheckpoint::open(const fs::path& directory) {
  TESSERA_CHECK(fs::is_directory(directory), "model directory ", directory.string(), " does not exist");
  SafetensorsCheckpoint checkpoint;
  checkpoint.directory_ = directory;
  const fs::path index_path = directory / kIndexFile;
  const fs::path single_path = directory / kSingleFile;

  if (!fs::exists(index_path)) {
    TESSERA_CHECK(fs::exists(single_path), "model directory ", directory.string(), " has neither ", kSingleFile,
                  " nor ", kIndexFile);
    checkpoint.files_.push_back(SafetensorsFile::open(single_path));
    const SafetensorsFile* file = checkpoint.files_.back().get();
    for (const auto& tensor : file->tensors()) checkpoint.locations_.emplace(tensor.name, Location{file, &tensor});
    return checkpoint;
  }

  checkpoint.sharded_ = true;
  const json index = read_index(index_path);
  TESSERA_CHECK(index.is_object(), index_path.string(), ": not a JSON object");
  const auto map_it = index.find("weight_map");
  TESSERA_CHECK(map_it != index.end() && map_it->is_object() && !map_it->empty(), index_path.string(),
                ": missing or empty 'weight_map' object");

  std::map<std::string, const SafetensorsFile*, std::less<>> shards;
  for (const auto& [tensor_name, shard_value] : map_it->items()) {
    TESSERA_CHECK(shard_value.is_string(), index_path.string(), ": tensor '", tensor_name,
                  "' maps to a ", shard_value.type_name(), ", not a file name");
    const auto& shard = shard_value.get_ref<const std::string&>();
    auto shard_it = shards.find(shard);
    if (shard_it == shards.end()) {
      check_shard_name(index_path, tensor_name, shard);
      const fs::path shard_path = directory / shard;
      TESSERA_CHECK(fs::exists(shard_path), "shard ", shard, " listed in ", index_path.string(),
                    " (for tensor '", tensor_name, "') is missing from ", directory.string());
      checkpoint.files_.push_back(SafetensorsFile::open(shard_path));
      shard_it = shards.emplace(shard, checkpoint.files_.back().get()).first;
    }
    const SafetensorsFile* file = shard_it->second;
    const SafetensorsTensor* tensor = file->find(tensor_name);
    TESSERA_CHECK(tensor != nullptr, index_path.string(), " puts tensor '", tensor_name, "' in shard ", shard,
                  ", which does not hold it");
    checkpoint.locations_.emplace(tensor_name, Location{file, tensor});
  }
  return checkpoint;
}

SafetensorsCheckpoint::Location SafetensorsCheckpoint::find(std::string_view name) const {
  const auto it = locations_.find(name);
  return it == locations_.end() ? Location{} : it->second;
}

std::string SafetensorsCheckpoint::describe() const {
  if (!sharded_) return concat(directory_.string(), " (", kSingleFile, ")");
  return concat(directory_.string(), " (", files_.size(), " safetensors shards)");
}

}  // namespace tessera::runtime
