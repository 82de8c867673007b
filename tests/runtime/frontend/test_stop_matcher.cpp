// Stop strings across token boundaries: held back while they may still match, cut before the match.
#include <gtest/gtest.h>

#include "runtime/frontend/stop_matcher.h"

namespace tessera::frontend {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  return out + m.flush();
}

TEST(StopMatcher, CutsBeforeAStopSpanningPieces) {
  StopMatcher m({"of Fr"});
  EXPECT_EQ(m.push("The capital o"), "The capital ");  // "o" may start the stop string: held back
  EXPECT_EQ(m.push("f France"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("more"), "");
}

TEST(StopMatcher, ReleasesWhatTurnsOutNotToMatch) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("ab ST"), "ab ");
  EXPECT_EQ(m.push("AR"), "STAR");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, EarliestOfSeveralAndFlushAtTheEnd) {
  StopMatcher m({"xyz", "b"});
  EXPECT_EQ(feed(m, {"aaxy", "zab"}), "aa");
  StopMatcher tail({"end"});
  EXPECT_EQ(feed(tail, {"the e", "n"}), "the en");  // never completed: all of it at the end
  StopMatcher none({});
  EXPECT_EQ(feed(none, {"a", "b"}), "ab");
}

}  // namespace
}  // namespace tessera::frontend
