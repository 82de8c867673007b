// Where a rank sits on its node, from the launcher's environment (parallel/local_rank.h): pure functions, no MPI
// needed (MPI's own answer is checked under mpirun in mpi_pending_operations_test.cpp).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "kernels/base/error.h"
#include "parallel/local_rank.h"
#include "tests/support/error_text.h"

namespace tessera::parallel {
namespace {

using testing::error_of;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(LocalRank, OpenMpiFirstThenSlurm) {
  auto both = local_rank_from_environment(
      env_of({{"OMPI_COMM_WORLD_LOCAL_RANK", "3"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}, {"SLURM_LOCALID", "1"}}));
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->rank, 3);
  EXPECT_EQ(both->size, 4);
  EXPECT_EQ(both->source, "OMPI_COMM_WORLD_LOCAL_RANK");

  auto slurm = local_rank_from_environment(env_of({{"SLURM_LOCALID", "2"}, {"SLURM_NTASKS_PER_NODE", "8"}}));
  ASSERT_TRUE(slurm.has_value());
  EXPECT_EQ(slurm->rank, 2);
  EXPECT_EQ(slurm->size, 8);
  EXPECT_EQ(slurm->source, "SLURM_LOCALID");

  // Heterogeneous allocations spell the tasks per node as a list: the size is then unknown, not an error.
  auto listed = local_rank_from_environment(env_of({{"SLURM_LOCALID", "0"}, {"SLURM_NTASKS_PER_NODE", "2(x3),1"}}));
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->size, 0);

  EXPECT_FALSE(local_rank_from_environment(env_of({})).has_value());
}

TEST(LocalRank, GarbageIsAnErrorNamingTheVariable) {
  const std::string message = error_of([] { local_rank_from_environment(env_of({{"SLURM_LOCALID", "x1"}})); });
  EXPECT_NE(message.find("SLURM_LOCALID='x1'"), std::string::npos) << message;
  EXPECT_THROW(local_rank_from_environment(env_of({{"OMPI_COMM_WORLD_LOCAL_RANK", "-1"}})), Error);
}

TEST(LocalRank, DetectPrefersTheEnvironment) {
  // With the launcher's answer at hand, MPI is not asked (this binary never initialises MPI).
  const LocalRank local = detect_local_rank(env_of({{"SLURM_LOCALID", "1"}, {"SLURM_NTASKS_PER_NODE", "2"}}));
  EXPECT_EQ(local.rank, 1);
  EXPECT_EQ(local.size, 2);
  EXPECT_EQ(local.source, "SLURM_LOCALID");
}

}  // namespace
}  // namespace tessera::parallel
