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
  for (int i = 0; i < 1000; ++i) CountAudit(w, 300, 0.6, kT0);
  EXPECT_FALSE(AuditThrottle(w, 10, 0.5, kT0).has_value());
  EXPECT_FALSE(AuditThrottle(w, 0, 0.95, kT0).has_value());
  EXPECT_TRUE(AuditThrottle(w, 10, 0.51, kT0).has_value());
}

TEST(AuditBudgetTest, TheBudgetShrinksAsTheSpoolFillsAndIsPaidByWaiting) {
  AuditWindow w;
  // At 70% the budget is half the rate: 5 events a second of 10.
  for (int i = 0; i < 20; ++i) CountAudit(w, 100, 0.6, kT0);
  auto t = AuditThrottle(w, 10, 0.7, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + absl::Seconds(4));
  EXPECT_EQ(t->events, 20);
  // Fuller, a smaller budget: one event a second from 90%.
  t = AuditThrottle(w, 10, 0.95, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + absl::Seconds(20));
  // Paid for at 70%: a new window begins, empty.
  EXPECT_FALSE(AuditThrottle(w, 10, 0.7, kT0 + absl::Seconds(4)).has_value());
  absl::MutexLock lock(&w.mu);
  EXPECT_EQ(w.events, 0);
  EXPECT_EQ(w.start, kT0 + absl::Seconds(4));
}

TEST(AuditBudgetTest, LargeEventsPayByTheirBytesUpToTheLongestPause) {
  AuditWindow w;
  CountAudit(w, 200 * 1024, 0.6, kT0);  // one 200 KB statement
  auto t = AuditThrottle(w, 10, 0.7, kT0);
  ASSERT_TRUE(t.has_value());
  // 200 KB / (5 * 512 B per second) = 80 s, capped at a minute.
  EXPECT_EQ(t->until, kT0 + kMaxThrottle);
  // Within a second's budget nobody waits.
  AuditWindow small;
  for (int i = 0; i < 4; ++i) CountAudit(small, 100, 0.6, kT0);
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

TEST(AuditBudgetTest, TheFillWeighsOnAnIdentityByItsPartOfTheBacklog) {
  AuditWindows windows;
  auto flood = windows.For("flood", kT0);
  auto light = windows.For("light", kT0);
  // Before the backlog: counted, but no part of it.
  CountAudit(*light, 300, 0.4, kT0);
  CountAudit(*flood, 100'000, 0.4, kT0);
  // Past half full the flood records ten times what the light one does.
  for (int i = 0; i < 5; ++i) CountAudit(*flood, 100'000, 0.6 + i * 0.05, kT0);
  for (int i = 0; i < 10; ++i) CountAudit(*light, 5'000, 0.9, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*flood), 1.0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*light), 0.1);
  // At 95% the flood pays at one event (512 B) a second: a minute.
  auto t = AuditThrottle(*flood, 1000, 0.95, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + kMaxThrottle);
  // The light one feels a tenth of the fill past half (54.5%): a budget
  // of 887 events a second covers its 11 events and 50 KB (0.11 s), so it
  // is read on.
  EXPECT_FALSE(
      AuditThrottle(*light, 1000, 0.95, kT0 + absl::Milliseconds(10))
          .has_value());
  // Had it recorded as much as the flood, it would wait as long.
  for (int i = 0; i < 90; ++i) CountAudit(*light, 5'000, 0.95, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*light), 1.0);
  t = AuditThrottle(*light, 1000, 0.95, kT0 + absl::Milliseconds(10));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->until, kT0 + kMaxThrottle);
}

TEST(AuditBudgetTest, IdentitiesThatRecordAlikeAreAllSlowed) {
  AuditWindows windows;
  std::vector<std::shared_ptr<AuditWindow>> many;
  for (int i = 0; i < 10; ++i) {
    many.push_back(windows.For("u" + std::to_string(i), kT0));
    for (int j = 0; j < 20; ++j) CountAudit(*many.back(), 300, 0.95, kT0);
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
  CountAudit(*a, 100'000, 0.8, kT0);
  CountAudit(*b, 1'000, 0.8, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*b), 0.01);
  // The spool drained below half: the next backlog starts from nothing,
  // and a's old bytes make nobody light.
  CountAudit(*b, 1'000, 0.3, kT0);
  CountAudit(*b, 2'000, 0.7, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*b), 1.0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*a), 0.0);
  CountAudit(*a, 1'000, 0.7, kT0);
  EXPECT_DOUBLE_EQ(BacklogWeight(*a), 0.5);
}

}  // namespace
}  // namespace warden::dataplane::session
