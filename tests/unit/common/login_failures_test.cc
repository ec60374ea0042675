// common/login_failures: a flood of failed logins from one
// address is recorded without flooding, refused for a while, and nothing
// is lost (every failure is an event or counted in a summary).
#include "common/login_failures.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden {
namespace {

using ::testing::HasSubstr;

TEST(LoginFailuresTest, RecordsTheFirstThenSummarizesAndRefuses) {
  LoginFailures f({absl::Seconds(60), 3, 5});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  int recorded = 0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(f.Refuse("10.1.2.3", t0));
    if (f.Failed("10.1.2.3", i % 2 ? "alice" : "bob", t0)) ++recorded;
  }
  EXPECT_EQ(recorded, 3);
  // Another address is not affected.
  EXPECT_FALSE(f.Refuse("10.9.9.9", t0));
  EXPECT_TRUE(f.Failed("10.9.9.9", "carol", t0));
  // Past refuse_after: refused until the window ends.
  EXPECT_TRUE(f.Refuse("10.1.2.3", t0 + absl::Seconds(10)));
  EXPECT_TRUE(f.Refuse("10.1.2.3", t0 + absl::Seconds(59)));
  EXPECT_TRUE(f.TakeSummaries(t0 + absl::Seconds(59)).empty());
  EXPECT_FALSE(f.Refuse("10.1.2.3", t0 + absl::Seconds(61)));
  const auto summaries = f.TakeSummaries(t0 + absl::Seconds(61));
  ASSERT_EQ(summaries.size(), 1u);  // 10.9.9.9 had nothing to summarize
  const auto& s = summaries[0];
  EXPECT_EQ(s.address, "10.1.2.3");
  EXPECT_EQ(s.failures, 5u);
  EXPECT_EQ(s.recorded, 3u);
  EXPECT_EQ(s.refused, 2u);
  // Every failure counts toward the names, most tried first.
  EXPECT_EQ(s.users, (std::vector<std::string>{"\"bob\" x3", "\"alice\" x2"}));
  EXPECT_THAT(LoginFailures::Describe(s),
              HasSubstr("5 failed logins from 10.1.2.3 in 1m"));
  EXPECT_THAT(LoginFailures::Describe(s), HasSubstr("2 connections refused"));
  EXPECT_EQ(f.suppressed_total(), 2u);
  EXPECT_EQ(f.refused_total(), 2u);
  // A new window records again.
  EXPECT_TRUE(f.Failed("10.1.2.3", "alice", t0 + absl::Seconds(62)));
}

// A failure that may not be recorded one by one (the spool is backlogged)
// is counted for the summary, and the summary says how many were recorded.
TEST(LoginFailuresTest, FailuresThatMayNotBeRecordedEachGoToTheSummary) {
  LoginFailures f({absl::Seconds(60), 3, 0});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(f.Failed("10.1.2.3", "alice", t0));
  EXPECT_FALSE(f.Failed("10.1.2.3", "alice", t0, "", /*may_record_each=*/false));
  EXPECT_FALSE(f.Failed("10.1.2.3", "alice", t0, "", false));
  EXPECT_TRUE(f.Failed("10.1.2.3", "alice", t0));  // a second of three
  const auto summaries = f.TakeSummaries(t0 + absl::Seconds(61));
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].failures, 4u);
  EXPECT_EQ(summaries[0].recorded, 2u);
  EXPECT_EQ(f.suppressed_total(), 2u);
}

// While the spool is backlogged the server records one event for every
// address's summary: counts summed, the busiest addresses named.
TEST(LoginFailuresTest, ManyAddressesSummariesCombineIntoOne) {
  LoginFailures f({absl::Seconds(60), 1, 0});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int a = 0; a < 8; ++a) {
    for (int i = 0; i <= a; ++i) {
      f.Failed(absl::StrCat("10.0.0.", a), absl::StrCat("user", a), t0);
    }
  }
  const auto summaries = f.TakeSummaries(t0 + absl::Seconds(61));
  ASSERT_EQ(summaries.size(), 7u);  // (10.0.0.0 had one failure, recorded)
  const LoginFailures::Summary all = LoginFailures::Combine(summaries);
  EXPECT_EQ(all.failures, 35u);  // 2 + 3 + ... + 8
  EXPECT_EQ(all.recorded, 7u);
  EXPECT_EQ(all.address,
            "7 addresses (10.0.0.7, 10.0.0.6, 10.0.0.5, 10.0.0.4, 10.0.0.3, ...)");
  EXPECT_EQ(all.users.front(), "\"user7\" x8");
  EXPECT_EQ(all.start, t0);
  EXPECT_THAT(LoginFailures::Describe(all),
              HasSubstr("35 failed logins from 7 addresses"));
}

TEST(LoginFailuresTest, ShutdownTakesTheOpenWindowsToo) {
  LoginFailures f({absl::Seconds(60), 1, 0});  // never refuses
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 4; ++i) f.Failed("::1", "x", t0);
  EXPECT_FALSE(f.Refuse("::1", t0));
  EXPECT_TRUE(f.TakeSummaries(t0 + absl::Seconds(1)).empty());
  const auto all = f.TakeSummaries(t0 + absl::Seconds(1), /*all=*/true);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].failures, 4u);
  EXPECT_EQ(all[0].recorded, 1u);
}

// Red team: 20 failures under junk names, then 60 under random long names,
// then 10 as alice: the summary listed the first names and alice never
// appeared. The most tried names lead, whatever came first.
TEST(LoginFailuresTest, TheAccountUnderAttackLeadsTheSummary) {
  LoginFailures f({absl::Seconds(60), 20, 0});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 20; ++i) f.Failed("10.1.2.3", absl::StrCat("junk", i), t0);
  for (int i = 0; i < 60; ++i) {
    f.Failed("10.1.2.3", absl::StrCat("n", i, std::string(50, 'z')), t0);
  }
  for (int i = 0; i < 10; ++i) f.Failed("10.1.2.3", "alice", t0);
  f.Failed("10.1.2.3", "bob", t0);
  const auto summaries = f.TakeSummaries(t0 + absl::Seconds(61));
  ASSERT_EQ(summaries.size(), 1u);
  ASSERT_FALSE(summaries[0].users.empty());
  // (Counts are exact up to 32 names per window, upper bounds beyond.)
  EXPECT_THAT(summaries[0].users[0], testing::StartsWith("\"alice\" x"));
  EXPECT_THAT(LoginFailures::Describe(summaries[0]),
              HasSubstr("users tried, most first: \"alice\" x"));
  EXPECT_TRUE(summaries[0].counts_bounded);
}

// Red team pass 4: a claimed name "root x500, mallory" read as two entries
// of the ranked list, the first "tried 500 times"; 24 names said "more
// than tracked"; the summary was recorded under no listener's environment.
TEST(LoginFailuresTest, NamesAreQuotedAndCountsSayWhatTheyAre) {
  LoginFailures f({absl::Seconds(60), 20, 0});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 21; ++i) {
    f.Failed("10.1.2.3", absl::StrCat("filler", i), t0, "dev");
  }
  for (int i = 0; i < 3; ++i) {
    f.Failed("10.1.2.3", "victim", t0, "dev");
    f.Failed("10.1.2.3", "root x500, mallory", t0, "dev");
  }
  const auto summaries = f.TakeSummaries(t0 + absl::Seconds(61));
  ASSERT_EQ(summaries.size(), 1u);
  const std::string text = LoginFailures::Describe(summaries[0]);
  EXPECT_THAT(text, HasSubstr("27 failed logins from 10.1.2.3 in 1m on dev"));
  EXPECT_THAT(text, HasSubstr("most first: \"root x500, mallory\" x3, "
                              "\"victim\" x3, \"filler0\" x1"));
  EXPECT_THAT(text, HasSubstr(", and 3 more)"));
  EXPECT_THAT(text, testing::Not(HasSubstr("upper bounds")));
  EXPECT_EQ(summaries[0].environments, std::vector<std::string>{"dev"});
  // Quotes and control bytes in a name are escaped inside its quotes.
  LoginFailures g({absl::Seconds(60), 0, 0});
  g.Failed("10.1.2.4", "a\" x9, \"b\n", t0);
  const auto more = g.TakeSummaries(t0 + absl::Seconds(61));
  ASSERT_EQ(more.size(), 1u);
  EXPECT_THAT(LoginFailures::Describe(more[0]),
              HasSubstr("\"a\\\" x9, \\\"b\\n\" x1"));
}

}  // namespace
}  // namespace warden
