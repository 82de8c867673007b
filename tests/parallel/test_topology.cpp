#include <gtest/gtest.h>

#include <set>

#include "kernels/base/error.h"
#include "parallel/topology.h"

namespace tessera::parallel {
namespace {

TEST(Topology, RankIsStageTimesTpPlusTpRankForManyLayouts) {
  for (int tp = 1; tp <= 8; ++tp) {
    for (int pp = 1; pp <= 8; ++pp) {
      const int world = tp * pp;
      std::set<int> seen;
      for (int rank = 0; rank < world; ++rank) {
        Topology topo(world, rank, {tp, pp});
        EXPECT_EQ(topo.stage(), rank / tp);
        EXPECT_EQ(topo.tp_rank(), rank % tp);
        EXPECT_EQ(topo.rank_of(topo.stage(), topo.tp_rank()), rank);
        EXPECT_EQ(topo.is_first_stage(), rank < tp);
        EXPECT_EQ(topo.is_last_stage(), rank >= world - tp);
        EXPECT_EQ(topo.is_leader(), rank == 0);
        seen.insert(topo.stage() * tp + topo.tp_rank());
      }
      EXPECT_EQ(static_cast<int>(seen.size()), world) << "tp=" << tp << " pp=" << pp;
    }
  }
}

TEST(Topology, GroupsPartitionTheWorld) {
  for (int tp = 1; tp <= 6; ++tp) {
    for (int pp = 1; pp <= 6; ++pp) {
      const int world = tp * pp;
      Topology topo(world, 0, {tp, pp});
      std::multiset<int> tp_members;
      for (int stage = 0; stage < pp; ++stage) {
        const auto group = topo.tp_group(stage);
        ASSERT_EQ(static_cast<int>(group.size()), tp);
        for (int t = 0; t < tp; ++t) {
          EXPECT_EQ(group[t], stage * tp + t) << "TP groups are contiguous";
          tp_members.insert(group[t]);
        }
      }
      std::multiset<int> pp_members;
      for (int t = 0; t < tp; ++t) {
        const auto group = topo.pipeline_group(t);
        ASSERT_EQ(static_cast<int>(group.size()), pp);
        for (int stage = 0; stage < pp; ++stage) {
          EXPECT_EQ(group[stage], stage * tp + t);
          pp_members.insert(group[stage]);
        }
      }
      for (int rank = 0; rank < world; ++rank) {
        EXPECT_EQ(tp_members.count(rank), 1u);
        EXPECT_EQ(pp_members.count(rank), 1u);
      }
    }
  }
}

TEST(Topology, RejectsInconsistentLayouts) {
  EXPECT_THROW(Topology(6, 0, {4, 2}), Error);
  EXPECT_THROW(Topology(4, 0, {0, 4}), Error);
  EXPECT_THROW(Topology(4, 0, {4, -1}), Error);
  EXPECT_THROW(Topology(4, 4, {2, 2}), Error);
  try {
    Topology(6, 0, {4, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs 8 ranks but the MPI world has 6"), std::string::npos) << e.what();
  }
}

TEST(StageLayers, BalancedAndContiguousWithFirstStagesTakingTheRemainder) {
  for (int layers = 1; layers <= 40; ++layers) {
    for (int pp = 1; pp <= layers; ++pp) {
      int next = 0;
      for (int stage = 0; stage < pp; ++stage) {
        const LayerRange range = stage_layers(layers, pp, stage);
        EXPECT_EQ(range.begin, next);
        EXPECT_EQ(range.size(), layers / pp + (stage < layers % pp ? 1 : 0));
        next = range.end;
      }
      EXPECT_EQ(next, layers);
    }
  }
  EXPECT_EQ(stage_layers(30, 4, 0).size(), 8);
  EXPECT_EQ(stage_layers(30, 4, 3).size(), 7);
}

TEST(StageLayers, MoreStagesThanLayersIsAnError) {
  EXPECT_THROW(stage_layers(2, 3, 0), Error);
}

}  // namespace
}  // namespace tessera::parallel
