#include "bench/tsp/tsp_plan.h"

#include <gtest/gtest.h>

#include <vector>

namespace runahead::tsp {
namespace {

// Runs the plan's all-gathers with NCCL's semantics on host "caches" (one per rank, row t holds
// the token id written there): a rank's own rows are written in place, then every gather copies
// each rank's chunk to slot (its rank on that communicator) of the receive region of every rank.
std::vector<std::vector<int64_t>> simulate_gathers(const Plan& plan) {
  const auto ranks = static_cast<size_t>(plan.ranks);
  std::vector<std::vector<int64_t>> cache(
      ranks, std::vector<int64_t>(static_cast<size_t>(plan.context), -1));
  for (size_t r = 0; r < ranks; ++r) {
    for (const Chunk& c : plan.chunks[r]) {
      for (int64_t t = c.begin; t < c.end; ++t) cache[r][static_cast<size_t>(t)] = t;
    }
  }
  for (const Gather& g : plan.gathers) {
    for (size_t sender = 0; sender < ranks; ++sender) {
      const Chunk& own = plan.chunks[sender][g.chunk];
      const int comm_rank =
          g.reversed ? plan.ranks - 1 - static_cast<int>(sender) : static_cast<int>(sender);
      const int64_t slot = g.first_row + comm_rank * g.rows_per_rank;
      EXPECT_EQ(own.size(), g.rows_per_rank);
      // In place: NCCL requires sendbuff == recvbuff + rank * count.
      EXPECT_EQ(own.begin, slot) << "rank " << sender << " gather of chunk " << g.chunk;
      for (size_t receiver = 0; receiver < ranks; ++receiver) {
        for (int64_t i = 0; i < g.rows_per_rank; ++i) {
          cache[receiver][static_cast<size_t>(slot + i)] =
              cache[sender][static_cast<size_t>(own.begin + i)];
        }
      }
    }
  }
  return cache;
}

TEST(TspPlanTest, ZigzagGivesEachRankAChunkAndItsMirror) {
  auto plan = make_plan(Scheme::kStrong, 8, 2);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->chunks[0], (std::vector<Chunk>{{0, 2}, {6, 8}}));
  EXPECT_EQ(plan->chunks[1], (std::vector<Chunk>{{2, 4}, {4, 6}}));
  ASSERT_EQ(plan->gathers.size(), 2u);
  EXPECT_FALSE(plan->gathers[0].reversed);
  EXPECT_TRUE(plan->gathers[1].reversed);
  EXPECT_EQ(plan->gathers[1].first_row, 4);
  EXPECT_EQ(plan->last_token_rank(), 0);
  EXPECT_EQ(plan->last_token_row(), 3);
}

TEST(TspPlanTest, PaperSplitIsEvenAndContiguous) {
  auto plan = make_plan(Scheme::kPaper, 12, 3);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->chunks[0], (std::vector<Chunk>{{0, 4}}));
  EXPECT_EQ(plan->chunks[2], (std::vector<Chunk>{{8, 12}}));
  ASSERT_EQ(plan->gathers.size(), 1u);
  EXPECT_EQ(plan->last_token_rank(), 2);
  EXPECT_EQ(plan->last_token_row(), 3);
}

TEST(TspPlanTest, GathersLeaveEveryRankWithTheWholeCacheInTokenOrder) {
  for (Scheme scheme : {Scheme::kPaper, Scheme::kStrong}) {
    for (int ranks = 1; ranks <= 8; ++ranks) {
      const int64_t context = 2 * ranks * 3;
      auto plan = make_plan(scheme, context, ranks);
      ASSERT_TRUE(plan) << plan.error().message;
      int64_t covered = 0;
      for (int r = 0; r < ranks; ++r) covered += plan->tokens_of(r);
      EXPECT_EQ(covered, context);
      const auto caches = simulate_gathers(*plan);
      for (int r = 0; r < ranks; ++r) {
        for (int64_t t = 0; t < context; ++t) {
          ASSERT_EQ(caches[static_cast<size_t>(r)][static_cast<size_t>(t)], t)
              << scheme_name(scheme) << ", " << ranks << " ranks: rank " << r << " row " << t;
        }
      }
    }
  }
}

TEST(TspPlanTest, GatherDestinationIsEachRanksOwnChunk) {
  auto plan = make_plan(Scheme::kStrong, 64, 4);
  ASSERT_TRUE(plan);
  for (const Gather& g : plan->gathers) {
    for (int r = 0; r < 4; ++r) {
      EXPECT_EQ(gather_destination(g, 4, r), plan->chunks[static_cast<size_t>(r)][g.chunk].begin);
    }
  }
}

TEST(TspPlanTest, ZigzagBalancesCausalWorkAndPaperComputesTheRectangle) {
  const int64_t context = 4096;
  const int ranks = 4;
  auto strong = make_plan(Scheme::kStrong, context, ranks);
  auto paper = make_plan(Scheme::kPaper, context, ranks);
  ASSERT_TRUE(strong && paper);
  int64_t strong_total = 0;
  for (int r = 0; r < ranks; ++r) {
    EXPECT_EQ(attention_pairs(*strong, r), attention_pairs(*strong, 0)) << "rank " << r;
    EXPECT_EQ(attention_pairs(*paper, r), context / ranks * context) << "rank " << r;
    strong_total += attention_pairs(*strong, r);
  }
  // Together the zigzag ranks compute the causal triangle exactly once.
  EXPECT_EQ(strong_total, context * (context + 1) / 2);
}

TEST(TspPlanTest, RejectsContextsThatDoNotSplitEvenly) {
  EXPECT_FALSE(make_plan(Scheme::kPaper, 10, 4));
  EXPECT_FALSE(make_plan(Scheme::kStrong, 12, 4));  // 8 chunks
  EXPECT_TRUE(make_plan(Scheme::kPaper, 12, 4));
  EXPECT_FALSE(make_plan(Scheme::kStrong, 0, 1));
  EXPECT_FALSE(make_plan(Scheme::kPaper, 16, 0));
  auto error = make_plan(Scheme::kStrong, 12, 4);
  ASSERT_FALSE(error);
  EXPECT_NE(error.error().message.find("12"), std::string::npos);
}

TEST(TspPlanTest, SchemeNamesRoundTrip) {
  for (Scheme scheme : {Scheme::kPaper, Scheme::kStrong}) {
    auto parsed = parse_scheme(scheme_name(scheme));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, scheme);
  }
  EXPECT_FALSE(parse_scheme("tsp"));
}

}  // namespace
}  // namespace runahead::tsp
