// The correlator: batches, unanswered executions and portal origins in
// protocol order, as PostgreSQL answers them.
#include "dataplane/session/correlator.h"

#include <memory>
#include <string>

#include "tests/unit/dataplane/pgwire/bodies.h"
#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

using pgwire::testing::BindBody;
using pgwire::testing::DescribeBody;
using pgwire::testing::ExecuteBody;

std::string Bind(absl::string_view portal) { return BindBody(portal, "s"); }
std::string Execute(absl::string_view portal) { return ExecuteBody(portal); }
std::string Describe(absl::string_view portal) {
  return DescribeBody('P', portal);
}

TEST(CorrelatorTest, BatchesAreCountedAsTheyAreSentAndAnswered) {
  Correlator c;
  EXPECT_FALSE(c.busy());
  c.Relayed('P');
  EXPECT_TRUE(c.pipeline().unsynced);
  EXPECT_TRUE(c.extended_since_sync());
  c.Relayed('E');
  EXPECT_TRUE(c.pipeline().executed_unsynced);
  c.Relayed('S');
  EXPECT_EQ(c.pipeline().syncs_sent, 1u);
  EXPECT_EQ(c.pipeline().pending_syncs, 1);
  EXPECT_FALSE(c.pipeline().unsynced);
  EXPECT_FALSE(c.extended_since_sync());
  EXPECT_TRUE(c.busy());
  c.Relayed('Q');
  EXPECT_EQ(c.pipeline().pending_syncs, 2);
  c.Answered();
  c.Ready(false);
  EXPECT_EQ(c.pipeline().syncs_done, 1u);
  EXPECT_EQ(c.pipeline().pending_syncs, 1);
  c.Answered();
  c.Ready(true);
  EXPECT_EQ(c.pipeline().pending_syncs, 0);
  EXPECT_FALSE(c.busy());
  EXPECT_EQ(c.unanswered(), 0);
}

TEST(CorrelatorTest, AClientThatDoesNotReadIsPausedUntilAnswersCome) {
  Correlator c;
  for (int64_t i = 0; i < Correlator::kMaxUnanswered; ++i) c.Relayed('E');
  EXPECT_FALSE(c.MayRead());
  EXPECT_FALSE(c.TakeResume());
  // Answers under the resume point let it be read again, once.
  for (int64_t i = 0;
       i < Correlator::kMaxUnanswered - Correlator::kResumeUnanswered; ++i) {
    c.Answered();
  }
  EXPECT_TRUE(c.TakeResume());
  EXPECT_FALSE(c.TakeResume());
  EXPECT_TRUE(c.MayRead());
}

TEST(CorrelatorTest, AnErrorAnswersTheRestOfItsBatch) {
  Correlator c;
  for (int i = 0; i < 3; ++i) c.Relayed('E');
  c.Relayed('S');
  EXPECT_EQ(c.unanswered(), 3);
  c.Answered();
  c.Failed();  // PostgreSQL skips the other two
  EXPECT_EQ(c.unanswered(), 0);
  c.Ready(false);
  EXPECT_EQ(c.unanswered(), 0);
}

TEST(CorrelatorTest, PortalsOfAFailedBatchOrAFailedQueryAreShielded) {
  Correlator c;
  // Bound and executed in one batch: passed on (PostgreSQL skips the
  // Execute if the Bind failed).
  EXPECT_FALSE(c.UnsafePortal('B', Bind("p")).has_value());
  EXPECT_FALSE(c.UnsafePortal('E', Execute("p")).has_value());
  c.Relayed('B');
  c.Relayed('E');
  c.Relayed('S');
  // Its batch failed; inside the transaction block the portal may be half
  // made: a later Execute or Describe of it is Warden's to answer.
  c.Failed();
  c.Ready(false);
  ASSERT_TRUE(c.UnsafePortal('E', Execute("p")).has_value());
  EXPECT_EQ(*c.UnsafePortal('D', Describe("p")), "p");
  // A simple Query taints the unnamed portal.
  EXPECT_FALSE(c.UnsafePortal('Q', "select 1").has_value());
  c.Relayed('Q');
  EXPECT_TRUE(c.UnsafePortal('E', Execute("")).has_value());
  // The transaction ends: PostgreSQL drops the portals, Warden forgets.
  c.Ready(true);
  EXPECT_FALSE(c.UnsafePortal('E', Execute("p")).has_value());
  // A portal whose Bind has not completed yet (an earlier batch still in
  // flight) is not passed on either.
  EXPECT_FALSE(c.UnsafePortal('B', Bind("q")).has_value());
  c.Relayed('B');
  c.Relayed('S');
  EXPECT_TRUE(c.UnsafePortal('E', Execute("q")).has_value());
  c.Ready(false);
  EXPECT_FALSE(c.UnsafePortal('E', Execute("q")).has_value());
  // PostgreSQL knows a portal by its first 63 bytes (red team pass 11):
  // a longer name reaches the same half-made portal and is shielded too.
  const std::string bound = std::string(63, 'p') + "E";
  EXPECT_FALSE(c.UnsafePortal('B', Bind(bound)).has_value());
  c.Relayed('B');
  c.Relayed('S');
  c.Failed();
  c.Ready(false);
  EXPECT_TRUE(c.UnsafePortal('E', Execute(std::string(63, 'p') + "B")).has_value());
  // A cursor Warden never saw bound is PostgreSQL's to answer.
  EXPECT_FALSE(c.UnsafePortal('E', Execute("my_cursor")).has_value());
}

// Which execution each answer belongs to, always on: an execution with a
// recorded intent completes with its own answers, whatever else the
// session relayed; one without an intent is followed but not reported.
TEST(CorrelatorTest, EachAnswerIsPairedWithItsExecution) {
  Correlator c;
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  auto summary = std::make_shared<warden::v1::Statement>();
  // An unrecorded Query (audit off, or refused), then a recorded one.
  c.Relayed('Q', pgwire::testing::QueryBody("select 1"), {}, t0);
  c.Relayed('Q', pgwire::testing::QueryBody("select 2"),
            stages::Intent{7, summary}, t0);
  std::string one = "SELECT 1";
  one.push_back('\0');
  c.Forwarded('D', "", t0);
  c.Forwarded('C', one, t0 + absl::Milliseconds(1));
  c.Forwarded('Z', "I", t0 + absl::Milliseconds(1));
  EXPECT_TRUE(c.completions()->empty());  // the first is not reported
  c.Forwarded('D', "", t0);
  c.Forwarded('D', "", t0);
  std::string two = "SELECT 2";
  two.push_back('\0');
  c.Forwarded('C', two, t0 + absl::Milliseconds(3));
  c.Forwarded('Z', "I", t0 + absl::Milliseconds(3));
  ASSERT_EQ(c.completions()->size(), 1u);
  const stages::Completion& done = c.completions()->front();
  EXPECT_EQ(done.intent.sequence, 7u);
  EXPECT_EQ(done.rows, 2);
  EXPECT_EQ(done.sqlstate, "00000");
  EXPECT_EQ(done.duration, absl::Milliseconds(3));
  c.completions()->clear();
  // What is still running when the session ends completes too.
  c.Relayed('Q', pgwire::testing::QueryBody("select pg_sleep(9)"),
            stages::Intent{8, summary}, t0);
  c.Finish("client went away", t0);
  ASSERT_EQ(c.completions()->size(), 1u);
  EXPECT_EQ(c.completions()->front().intent.sequence, 8u);
  EXPECT_EQ(c.completions()->front().sqlstate, "");
}

}  // namespace
}  // namespace warden::dataplane::session
