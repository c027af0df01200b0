#include "server/stop_matcher.h"

#include <gtest/gtest.h>

namespace kr {
namespace {

// Feeds pieces, returns everything emitted (including the flush).
std::string run(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  out += m.flush();
  return out;
}

TEST(StopMatcher, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, StopInsideOnePiece) {
  StopMatcher m({"END"});
  EXPECT_EQ(run(m, {"helloENDworld"}), "hello");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "END");
}

TEST(StopMatcher, StopSpanningPiecesNeverLeaks) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("abcS"), "abc");  // "S" held back
  EXPECT_EQ(m.push("T"), "");        // "ST" held back
  EXPECT_EQ(m.push("O"), "");
  EXPECT_EQ(m.push("Pxyz"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, FalsePrefixIsReleased) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("aST"), "a");
  EXPECT_EQ(m.push("x"), "STx");
  EXPECT_EQ(m.push("S"), "");
  EXPECT_EQ(m.flush(), "S");  // end of generation: the held tail is real text
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"world", "lo w"});
  EXPECT_EQ(run(m, {"hel", "lo wor", "ld"}), "hel");
  EXPECT_EQ(m.matched(), "lo w");
}

TEST(StopMatcher, EarliestWinsWithinOnePieceAndTiesGoToTheLongest) {
  StopMatcher m({"world", "lo w"});
  EXPECT_EQ(run(m, {"hello world"}), "hel");  // both present: "lo w" starts first
  EXPECT_EQ(m.matched(), "lo w");
  StopMatcher late_first({"ab", "xab"});
  EXPECT_EQ(run(late_first, {"..xab.."}), "..");
  EXPECT_EQ(late_first.matched(), "xab");
  StopMatcher tie({"ab", "abc", "a"});
  EXPECT_EQ(run(tie, {"xabcd"}), "x");
  EXPECT_EQ(tie.matched(), "abc");
}

TEST(StopMatcher, OverlappingPrefixesKeepTheLongestHold) {
  StopMatcher m({"aab"});
  EXPECT_EQ(m.push("xaa"), "x");
  EXPECT_EQ(m.push("a"), "a");  // "aaa": only "aa" can still start "aab"
  EXPECT_EQ(m.push("b"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, EverySplitPointGivesTheSameOutput) {
  const std::string text = "one two three four";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    StopMatcher m({"three"});
    EXPECT_EQ(run(m, {text.substr(0, cut), text.substr(cut)}), "one two ") << "cut at " << cut;
  }
  StopMatcher bytewise({"three"});
  std::vector<std::string> pieces;
  for (char c : text) pieces.emplace_back(1, c);
  EXPECT_EQ(run(bytewise, pieces), "one two ");
}

TEST(StopMatcher, EmptyStopStringsAreIgnored) {
  StopMatcher m({""});
  EXPECT_EQ(run(m, {"abc"}), "abc");
}

}  // namespace
}  // namespace kr
