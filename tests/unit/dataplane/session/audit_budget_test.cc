// The audit budget while the spool is backlogged: who waits, how long,
// and that a paid window starts afresh.
#include "dataplane/session/audit_budget.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST(AuditBudgetTest, NoLimitUpToHalfFullOrWithoutARate) {
  AuditWindow w;
  for (int i = 0; i < 1000; ++i) CountAudit(w, 300, 10, 0.6, kT0);
  EXPECT_FALSE(AuditThrottle(w, 10, 0.5, kT0).has_value());
  EXPECT_FALSE(AuditThrottle(w, 0, 0.95, kT0).has_value());
  EXPECT_TRUE(AuditThrottle(w, 10, 0.51, kT0).has_value());
  // Recorded up to half full, nothing is owed once it is past half.
  AuditWindow early;
  for (int i = 0; i < 1000; ++i) CountAudit(early, 300, 10, 0.5, kT0);
  EXPECT_FALSE(AuditThrottle(early, 10, 0.95, kT0).has_value());
}

TEST(AuditBudgetTest, TheBudgetShrinksAsTheSpoolFillsAndIsPaidByWaiting) {
  AuditWindow w;
  // At 70% the budget is half the rate: 5 events a second of 10.
  for (int i = 0; i < 20; ++i) CountAudit(w, 100, 10, 0.7, kT0);
  auto t = AuditThrottle(w, 10, 0.7, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + absl::Seconds(4));
  EXPECT_EQ(t->events, 20);
  // Fuller, a smaller budget: one event a second from 90%.
  AuditWindow fuller;
  for (int i = 0; i < 20; ++i) CountAudit(fuller, 100, 10, 0.95, kT0);
  t = AuditThrottle(fuller, 10, 0.95, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + absl::Seconds(20));
  // An event is priced when it is recorded: the first window's events are
  // not priced again now that the spool is fuller.
  t = AuditThrottle(w, 10, 0.95, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + absl::Seconds(4));
  // Paid for: a new window begins, empty.
  EXPECT_FALSE(AuditThrottle(w, 10, 0.7, kT0 + absl::Seconds(4)).has_value());
  absl::MutexLock lock(&w.mu);
  EXPECT_EQ(w.events, 0);
  EXPECT_EQ(w.cost, 0);
  EXPECT_EQ(w.start, kT0 + absl::Seconds(4));
}

TEST(AuditBudgetTest, LargeEventsPayByTheirBytesAMinuteAtATime) {
  AuditWindow w;
  CountAudit(w, 200 * 1024, 10, 0.7, kT0);  // one 200 KB statement
  auto t = AuditThrottle(w, 10, 0.7, kT0);
  ASSERT_TRUE(t.has_value());
  // 200 KB / (5 * 512 B per second) = 80 s; checked again after a minute,
  // and still owed then.
  EXPECT_EQ(t->until, kT0 + kMaxThrottle);
  t = AuditThrottle(w, 10, 0.7, kT0 + kMaxThrottle);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + absl::Seconds(80));
  // Within a second's budget nobody waits.
  AuditWindow small;
  for (int i = 0; i < 4; ++i) CountAudit(small, 100, 10, 0.7, kT0);
  EXPECT_FALSE(AuditThrottle(small, 10, 0.7, kT0).has_value());
}

TEST(AuditBudgetTest, AnIdentitysSessionsShareOneWindowKeptWhileUsed) {
  AuditWindows windows;
  auto a = windows.For("alice", kT0);
  auto b = windows.For("alice", kT0);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(windows.For("bob", kT0).get(), a.get());
  // Past 4,096 identities, idle windows nobody holds are dropped; held
  // ones stay.
  for (int i = 0; i < 5000; ++i) windows.For("u" + std::to_string(i), kT0);
  auto later = windows.For("alice", kT0 + 3 * kMaxThrottle);
  EXPECT_EQ(later.get(), a.get());
}

TEST(AuditBudgetTest, BelowTheReserveTheFillWeighsByAnIdentitysPart) {
  AuditWindows windows;
  auto flood = windows.For("flood", kT0);
  auto light = windows.For("light", kT0);
  // Before the backlog: nothing owed, and no part of it.
  CountAudit(*light, 300, 1000, 0.4, kT0);
  CountAudit(*flood, 100'000, 1000, 0.4, kT0);
  // Past half full the flood records ten times what the light one does.
  for (int i = 0; i < 5; ++i) {
    CountAudit(*flood, 100'000, 1000, 0.6 + i * 0.05, kT0);
  }
  for (int i = 0; i < 10; ++i) CountAudit(*light, 5'000, 1000, 0.85, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*flood), 1.0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*light), 0.1);
  // The flood pays the full price: 100 KB at 60% (750 events, 384 KB a
  // second), ..., at 80% (250 events): over 2 s.
  auto t = AuditThrottle(*flood, 1000, 0.85, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
  EXPECT_GT(t->until, kT0 + absl::Seconds(2));
  // The light one felt a tenth of the fill past half (53.5%): its 10 events
  // and 50 KB cost about 0.11 s, so it is read on.
  EXPECT_FALSE(
      AuditThrottle(*light, 1000, 0.85, kT0 + absl::Milliseconds(10))
          .has_value());
  // Had it recorded as much as the flood, it would pay as much.
  for (int i = 0; i < 90; ++i) CountAudit(*light, 5'000, 1000, 0.85, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*light), 1.0);
  t = AuditThrottle(*light, 1000, 0.85, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
}

// In the last tenth nobody is light: a fresh identity (no part of the
// backlog) pays one event a second like the heaviest (red team: a second,
// weightless identity filled the reserve in a second).
TEST(AuditBudgetTest, InTheReserveEveryIdentityPaysTheFullPrice) {
  AuditWindows windows;
  auto flood = windows.For("flood", kT0);
  auto fresh = windows.For("fresh", kT0);
  auto other = windows.For("other", kT0);
  CountAudit(*flood, 500'000, 1000, 0.85, kT0);
  for (int i = 0; i < 3; ++i) CountAudit(*fresh, 300, 1000, 0.9, kT0);
  EXPECT_LT(BacklogWeight(*fresh), 0.01);
  auto t = AuditThrottle(*fresh, 1000, 0.9, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + absl::Seconds(3));  // 3 events at one a second
  // Just below the reserve a light identity is read on.
  for (int i = 0; i < 3; ++i) CountAudit(*other, 300, 1000, 0.89, kT0);
  EXPECT_FALSE(
      AuditThrottle(*other, 1000, 0.89, kT0 + absl::Milliseconds(10))
          .has_value());
}

// A statement pays before it is read in, at the fill it would leave: a
// 100 KB statement that would take the spool from 86% into the reserve
// waits for its whole price (195 s at 512 B/s), checked again every
// kMaxThrottle, and is not let in when a pause ends unpaid (red team: the
// rest of the price was forgiven after 60 s, and one statement jumped from
// 77% to 96%).
TEST(AuditBudgetTest, AStatementPaysBeforeItIsReadInAndInFull) {
  AuditWindow w;
  const size_t statement = 100'000;
  // Fresh window, would leave the spool at 95.5%.
  auto t = AuditThrottle(w, 1000, 0.955, kT0, statement);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + kMaxThrottle);
  EXPECT_EQ(t->bytes, 100'000);
  t = AuditThrottle(w, 1000, 0.955, kT0 + kMaxThrottle, statement);
  ASSERT_TRUE(t.has_value()) << "the unpaid rest is not forgiven";
  EXPECT_EQ(t->until, kT0 + 2 * kMaxThrottle);
  t = AuditThrottle(w, 1000, 0.955, kT0 + 3 * kMaxThrottle, statement);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + absl::Seconds(100'000.0 / 512));
  EXPECT_FALSE(AuditThrottle(w, 1000, 0.955,
                             kT0 + absl::Seconds(100'000.0 / 512), statement)
                   .has_value());
  // The same statement at a fill that leaves it below half is not held.
  AuditWindow other;
  EXPECT_FALSE(AuditThrottle(other, 1000, 0.5, kT0, statement).has_value());
  // Nor, within a second's budget, at 60% (a budget of 750 events, 384 KB).
  EXPECT_FALSE(AuditThrottle(other, 1000, 0.6, kT0, statement).has_value());
}

TEST(AuditBudgetTest, IdentitiesThatRecordAlikeAreAllSlowed) {
  AuditWindows windows;
  std::vector<std::shared_ptr<AuditWindow>> many;
  for (int i = 0; i < 10; ++i) {
    many.push_back(windows.For("u" + std::to_string(i), kT0));
    for (int j = 0; j < 20; ++j) CountAudit(*many.back(), 300, 1000, 0.95, kT0);
  }
  for (auto& w : many) {
    EXPECT_DOUBLE_EQ(BacklogWeight(*w), 1.0);
    auto t = AuditThrottle(*w, 1000, 0.95, kT0 + absl::Milliseconds(10));
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->until, kT0 + absl::Seconds(20));  // one event a second
  }
}

TEST(AuditBudgetTest, ANewBacklogIsWeighedAfresh) {
  AuditWindows windows;
  auto a = windows.For("a", kT0);
  auto b = windows.For("b", kT0);
  CountAudit(*a, 100'000, 1000, 0.8, kT0);
  CountAudit(*b, 1'000, 1000, 0.8, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*b), 0.01);
  // The spool drained below half: the next backlog starts from nothing,
  // and a's old bytes make nobody light.
  CountAudit(*b, 1'000, 1000, 0.3, kT0);
  CountAudit(*b, 2'000, 1000, 0.7, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*b), 1.0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*a), 0.0);
  CountAudit(*a, 1'000, 1000, 0.7, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*a), 0.5);
}

}  // namespace
}  // namespace warden::dataplane::session
