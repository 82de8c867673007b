#include <gtest/gtest.h>

#include <set>

#include "kernels/base/error.h"
#include "parallel/topology.h"
#include "tests/support/error_text.h"

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

// --pp-layers: the layout's counts, stage after stage; empty counts are the balanced split.
TEST(StageLayers, FollowTheLayoutsPartition) {
  const ParallelLayout layout{1, 2, {19, 11}};
  EXPECT_EQ(stage_layers(30, layout, 0).begin, 0);
  EXPECT_EQ(stage_layers(30, layout, 0).end, 19);
  EXPECT_EQ(stage_layers(30, layout, 1).begin, 19);
  EXPECT_EQ(stage_layers(30, layout, 1).end, 30);
  const ParallelLayout three{2, 3, {1, 5, 2}};
  int next = 0;
  for (int stage = 0; stage < 3; ++stage) {
    const LayerRange r = stage_layers(8, three, stage);
    EXPECT_EQ(r.begin, next);
    EXPECT_EQ(r.size(), three.stage_layer_counts[static_cast<size_t>(stage)]);
    next = r.end;
  }
  EXPECT_EQ(next, 8);
  for (int layers = 1; layers <= 12; ++layers) {
    for (int pp = 1; pp <= layers; ++pp) {
      for (int stage = 0; stage < pp; ++stage) {
        const LayerRange balanced = stage_layers(layers, pp, stage), same = stage_layers(layers, {1, pp}, stage);
        EXPECT_EQ(same.begin, balanced.begin);
        EXPECT_EQ(same.end, balanced.end);
      }
    }
  }
  EXPECT_THROW(stage_layers(30, layout, 2), Error);
  EXPECT_THROW(stage_layers(30, layout, -1), Error);
}

TEST(StageLayers, APartitionThatDoesNotFitTheModelNamesTheFlagCountsSumAndLayers) {
  using testing::error_of;
  EXPECT_EQ(error_of([] { stage_layers(30, {1, 2, {19, 12}}, 0); }),
            "--pp-layers 19,12: the counts sum to 31 layers but the model has 30 (give 2 counts >= 1 that sum to 30, "
            "or auto)");
  EXPECT_EQ(error_of([] { stage_layers(30, {1, 2, {10, 11}}, 1); }),
            "--pp-layers 10,11: the counts sum to 21 layers but the model has 30 (give 2 counts >= 1 that sum to 30, "
            "or auto)");
  EXPECT_EQ(error_of([] { stage_layers(30, {1, 2, {30}}, 0); }),
            "--pp-layers 30: 1 layer count for pp=2 pipeline stages (give exactly 2, one per stage, or auto)");
  EXPECT_EQ(error_of([] { stage_layers(30, {1, 2, {10, 10, 10}}, 0); }),
            "--pp-layers 10,10,10: 3 layer counts for pp=2 pipeline stages (give exactly 2, one per stage, or auto)");
  EXPECT_EQ(error_of([] { stage_layers(30, {1, 2, {30, 0}}, 0); }),
            "--pp-layers 30,0: stage 1 has 0 layers; every stage needs at least one layer");
  EXPECT_EQ(error_of([] { stage_layers(30, {1, 2, {31, -1}}, 0); }),
            "--pp-layers 31,-1: stage 1 has -1 layers; every stage needs at least one layer");
  // Without the model's layer count only the shape of the partition is checked.
  EXPECT_EQ(error_of([] { check_stage_layer_counts({19, 12}, 2); }), "");
  EXPECT_EQ(error_of([] { check_stage_layer_counts({}, 4, 30); }), "");
  EXPECT_NE(error_of([] { check_stage_layer_counts({19}, 2); }), "");
}

TEST(ParallelLayout, ToStringShowsAPartitionOnlyWhenSet) {
  EXPECT_EQ((ParallelLayout{3, 2}).to_string(), "tp=3 pp=2");
  EXPECT_EQ((ParallelLayout{1, 2, {19, 11}}).to_string(), "tp=1 pp=2 layers=19,11");
  EXPECT_EQ(layer_counts_text({4}), "4");
  EXPECT_EQ(layer_counts_text({}), "");
}

TEST(Topology, CarriesAndChecksThePartition) {
  const Topology topo(2, 1, {1, 2, {19, 11}});
  EXPECT_EQ(topo.layout().stage_layer_counts, (std::vector<int>{19, 11}));
  EXPECT_EQ(topo.describe(), "rank 1 (stage 1, tp_rank 0 of tp=1 pp=2 layers=19,11)");
  EXPECT_THROW(Topology(2, 0, {1, 2, {30}}), Error);
  EXPECT_THROW(Topology(2, 0, {1, 2, {30, 0}}), Error);
  EXPECT_NO_THROW(Topology(2, 0, {1, 2, {29, 99}}));  // the sum is the model's business (stage_layers)
}

}  // namespace
}  // namespace tessera::parallel
