// The audit budget while the spool is backlogged: who waits, how long,
// and that a paid window starts afresh.
#include "dataplane/session/audit_budget.h"

#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST(AuditBudgetTest, NoLimitUpToHalfFullOrWithoutARate) {
  AuditWindow w;
  for (int i = 0; i < 1000; ++i) CountAudit(w, 300, kT0);
  EXPECT_FALSE(AuditThrottle(w, 10, 0.5, kT0).has_value());
  EXPECT_FALSE(AuditThrottle(w, 0, 0.95, kT0).has_value());
  EXPECT_TRUE(AuditThrottle(w, 10, 0.51, kT0).has_value());
}

TEST(AuditBudgetTest, TheBudgetShrinksAsTheSpoolFillsAndIsPaidByWaiting) {
  AuditWindow w;
  // At 70% the budget is half the rate: 5 events a second of 10.
  for (int i = 0; i < 20; ++i) CountAudit(w, 100, kT0);
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
  CountAudit(w, 200 * 1024, kT0);  // one 200 KB statement
  auto t = AuditThrottle(w, 10, 0.7, kT0);
  ASSERT_TRUE(t.has_value());
  // 200 KB / (5 * 512 B per second) = 80 s, capped at a minute.
  EXPECT_EQ(t->until, kT0 + kMaxThrottle);
  // Within a second's budget nobody waits.
  AuditWindow small;
  for (int i = 0; i < 4; ++i) CountAudit(small, 100, kT0);
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

}  // namespace
}  // namespace warden::dataplane::session
