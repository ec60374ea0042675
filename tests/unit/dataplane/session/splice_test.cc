// Splice: kept runs go out as one slice, replaced and dropped messages
// cut them, and nothing is sent that was not asked for.
#include "dataplane/session/splice.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SpliceTest, KeptRunsGoOutWholeAndReplacementsInTheirPlace) {
  std::vector<std::string> sent;
  Splice splice("AABBBCD", [&](absl::string_view s) { sent.emplace_back(s); });
  splice.Keep(2);
  splice.Keep(3);
  EXPECT_EQ(splice.rest(), "CD");
  splice.Replace(1, "x");
  splice.Keep(1);
  EXPECT_TRUE(splice.done());
  splice.SendKept();
  EXPECT_THAT(sent, ElementsAre("AABBB", "x", "D"));
  EXPECT_EQ(splice.taken(), 7u);
}

TEST(SpliceTest, DroppedBytesAreNotSentAndNothingGoesUnasked) {
  std::vector<std::string> sent;
  {
    Splice splice("ABC", [&](absl::string_view s) { sent.emplace_back(s); });
    splice.Keep(1);
    splice.Drop(1);
    splice.Keep(1);
    // No SendKept: a read that ends the session sends nothing more.
  }
  EXPECT_THAT(sent, ElementsAre("A"));
  std::vector<std::string> none;
  Splice empty("", [&](absl::string_view s) { none.emplace_back(s); });
  empty.SendKept();
  EXPECT_THAT(none, IsEmpty());
}

}  // namespace
}  // namespace warden::dataplane::session
