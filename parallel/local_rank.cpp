#include "parallel/local_rank.h"

#include <charconv>
#include <cstdlib>

#include "kernels/base/error.h"

namespace tessera::parallel {
namespace {

std::optional<int> read_count(const EnvLookup& env, const std::string& name, bool required_number) {
  const std::optional<std::string> value = env(name);
  if (!value) return std::nullopt;
  int parsed = -1;
  const char* begin = value->data();
  const char* end = begin + value->size();
  const auto [ptr, ec] = std::from_chars(begin, end, parsed);
  if (ec != std::errc() || ptr != end || parsed < 0) {
    TESSERA_CHECK(!required_number, "environment variable ", name, "='", *value,
                  "' is not a non-negative integer");
    return std::nullopt;
  }
  return parsed;
}

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

std::optional<LocalRank> local_rank_from_environment(const EnvLookup& env) {
  if (auto rank = read_count(env, "OMPI_COMM_WORLD_LOCAL_RANK", true)) {
    return LocalRank{*rank, read_count(env, "OMPI_COMM_WORLD_LOCAL_SIZE", true).value_or(0),
                     "OMPI_COMM_WORLD_LOCAL_RANK"};
  }
  if (auto rank = read_count(env, "SLURM_LOCALID", true)) {
    // SLURM_NTASKS_PER_NODE may be absent or a list like "2(x3)"; only a plain number is a size.
    return LocalRank{*rank, read_count(env, "SLURM_NTASKS_PER_NODE", false).value_or(0), "SLURM_LOCALID"};
  }
  return std::nullopt;
}

LocalRank detect_local_rank(const EnvLookup& env) {
  if (auto from_env = local_rank_from_environment(env)) return *from_env;
  return mpi_node_local_rank();
}

}  // namespace tessera::parallel
