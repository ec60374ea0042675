#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "policy/sql/cache.h"

namespace warden::policy::sql {
namespace {

TEST(FactsCacheTest, SecondLookupIsAHitAndSharesTheResult) {
  FactsCache cache(10);
  auto a = cache.Get("DELETE FROM t WHERE id = 1");
  auto b = cache.Get("DELETE FROM t WHERE id = 1");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ((**a)[0].command, "DELETE");
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
}

TEST(FactsCacheTest, EvictsLeastRecentlyUsed) {
  FactsCache cache(2);
  ASSERT_TRUE(cache.Get("SELECT * FROM a").ok());
  ASSERT_TRUE(cache.Get("SELECT * FROM b").ok());
  ASSERT_TRUE(cache.Get("SELECT * FROM a").ok());  // a is now most recent.
  ASSERT_TRUE(cache.Get("SELECT * FROM c").ok());  // evicts b.
  EXPECT_EQ(cache.stats().entries, 2u);
  const uint64_t misses = cache.stats().misses;
  ASSERT_TRUE(cache.Get("SELECT * FROM a").ok());
  EXPECT_EQ(cache.stats().misses, misses);  // still cached.
  ASSERT_TRUE(cache.Get("SELECT * FROM b").ok());
  EXPECT_EQ(cache.stats().misses, misses + 1);  // was evicted.
}

TEST(FactsCacheTest, InlinedConstantsShareTheAnalysisOfPlainReadsAndInserts) {
  FactsCache cache(10);
  ASSERT_TRUE(cache.Get("SELECT abalance FROM accounts WHERE aid = 17").ok());
  auto other = cache.Get("SELECT abalance FROM accounts WHERE aid = 4711");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((**other)[0].relations[0].name, "accounts");
  ASSERT_TRUE(cache.Get("INSERT INTO h (a, b) VALUES (1, 'x')").ok());
  ASSERT_TRUE(cache.Get("INSERT INTO h (a, b) VALUES (2, 'y')").ok());
  const auto stats = cache.stats();
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.normalized_hits, 2u);
  EXPECT_EQ(stats.entries, 2u);  // normalized hits are not added as texts.
}

TEST(FactsCacheTest, FactsThatDependOnConstantsAreNeverShared) {
  // Same text up to constants; facts that differ. Each must be analyzed.
  struct Pair {
    const char* first;
    const char* second;
  };
  const Pair pairs[] = {
      {"DELETE FROM t WHERE 1 = 2", "DELETE FROM t WHERE 1 = 1"},
      // A LIKE pattern's constant decides whether it filters.
      {"DELETE FROM t WHERE name LIKE 'a%'", "DELETE FROM t WHERE name LIKE '%'"},
      {"UPDATE t SET a = 1 WHERE name ILIKE 'x_'",
       "UPDATE t SET a = 1 WHERE name ILIKE '%x'"},
      {"SELECT set_config('a', 'b', false)",
       "SELECT set_config('session_replication_role', 'replica', false)"},
      {"DO $$BEGIN PERFORM 1; END$$",
       "DO $$BEGIN EXECUTE 'DROP TABLE t'; END$$"},
      {"UPDATE pg_settings SET setting = 'x' WHERE name = 'work_mem'",
       "UPDATE pg_settings SET setting = 'x' WHERE name = "
       "'session_replication_role'"},
      {"WITH d AS (DELETE FROM t WHERE id = 5 RETURNING *) SELECT 1",
       "WITH d AS (DELETE FROM t WHERE 1 = 1 RETURNING *) SELECT 1"},
      // An upsert's DO UPDATE ... WHERE (found by an attack: the second
      // was allowed on the first's analysis and rewrote every row).
      {"INSERT INTO t SELECT * FROM t ON CONFLICT (id) DO UPDATE SET a = 0 "
       "WHERE 1 = 2",
       "INSERT INTO t SELECT * FROM t ON CONFLICT (id) DO UPDATE SET a = 0 "
       "WHERE 1 = 1"},
      {"INSERT INTO t SELECT * FROM t ON CONFLICT (id) DO UPDATE SET a = 0 "
       "WHERE t.name LIKE 'zz%'",
       "INSERT INTO t SELECT * FROM t ON CONFLICT (id) DO UPDATE SET a = 0 "
       "WHERE t.name LIKE '%'"},
  };
  for (const Pair& p : pairs) {
    FactsCache cache(10);
    ASSERT_TRUE(cache.Get(p.first).ok()) << p.first;
    auto cached = cache.Get(p.second);
    auto fresh = Analyze(p.second);
    ASSERT_TRUE(cached.ok() && fresh.ok()) << p.second;
    EXPECT_EQ(cache.stats().normalized_hits, 0u) << p.second;
    const StatementFacts& c = (**cached)[0];
    const StatementFacts& f = (*fresh)[0];
    EXPECT_EQ(c.has_effective_filter, f.has_effective_filter) << p.second;
    EXPECT_EQ(c.settings, f.settings) << p.second;
    EXPECT_EQ(c.nested.size(), f.nested.size()) << p.second;
    EXPECT_EQ(c.text, p.second);
  }
}

// DELETE and UPDATE whose filter the shape decides share the analysis of
// that shape with other constants (TPC-B's UPDATEs were analyzed from
// their own text every time), and get what their own analysis gives.
TEST(FactsCacheTest, WritesShareTheirShapesAnalysis) {
  struct Pair {
    const char* first;
    const char* second;
  };
  const Pair pairs[] = {
      {"UPDATE pgbench_accounts SET abalance = abalance + 17 WHERE aid = 4",
       "UPDATE pgbench_accounts SET abalance = abalance + -3 WHERE aid = 99"},
      {"UPDATE t SET a = 1 WHERE id > 0", "UPDATE t SET a = 1 WHERE id > -100"},
      {"UPDATE t SET a = 2 WHERE id IN (1, 2)",
       "UPDATE t SET a = 3 WHERE id IN (7, 8)"},
      {"DELETE FROM t WHERE id = 5 AND note = 'x'",
       "DELETE FROM t WHERE id = 6 AND note = 'y'"},
  };
  for (const Pair& p : pairs) {
    FactsCache cache(10);
    ASSERT_TRUE(cache.Get(p.first).ok()) << p.first;
    auto cached = cache.Get(p.second);
    auto fresh = Analyze(p.second);
    ASSERT_TRUE(cached.ok() && fresh.ok()) << p.second;
    EXPECT_EQ(cache.stats().normalized_hits, 1u) << p.second;
    const StatementFacts& c = (**cached)[0];
    const StatementFacts& f = (*fresh)[0];
    EXPECT_EQ(c.has_effective_filter, f.has_effective_filter) << p.second;
    EXPECT_EQ(c.command, f.command) << p.second;
    EXPECT_EQ(c.relations, f.relations) << p.second;
  }
}

// Plain texts are keyed without parsing; the key keeps everything but the
// values of constants, so what differs in anything else is analyzed.
TEST(FactsCacheTest, PlainTextsShareWithoutParsingAndStayExact) {
  FactsCache cache(100);
  ASSERT_TRUE(cache.Get("SELECT abalance FROM pgbench_accounts WHERE aid = 17;")
                  .ok());
  ASSERT_TRUE(
      cache.Get("SELECT abalance FROM pgbench_accounts WHERE aid = 99171;")
          .ok());
  EXPECT_EQ(cache.stats().normalized_hits, 1u);
  ASSERT_TRUE(cache.Get("UPDATE pgbench_tellers SET tbalance = tbalance + "
                        "-4070 WHERE tid = 3;")
                  .ok());
  ASSERT_TRUE(cache.Get("UPDATE pgbench_tellers SET tbalance = tbalance + "
                        "12.5e3 WHERE tid = 8;")
                  .ok());
  EXPECT_EQ(cache.stats().normalized_hits, 2u);
  // Strings too, with '' inside.
  ASSERT_TRUE(cache.Get("SELECT * FROM t WHERE name = 'O''Brien' AND id = 1").ok());
  ASSERT_TRUE(cache.Get("SELECT * FROM t WHERE name = 'x' AND id = 2").ok());
  EXPECT_EQ(cache.stats().normalized_hits, 3u);
  // Two strings with only a newline between are one to PostgreSQL; with a
  // space, a syntax error: never the same key.
  ASSERT_TRUE(cache.Get("SELECT 'a'\n'b' FROM t WHERE id = 1").ok());
  EXPECT_FALSE(cache.Get("SELECT 'a' 'b' FROM t WHERE id = 2").ok());
  // Other identifiers, operators or keywords are other statements.
  for (const char* other :
       {"SELECT abalance FROM pgbench_accounts WHERE bid = 17;",
        "SELECT abalance FROM pgbench_accounts WHERE aid > 17;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
        "DELETE FROM pgbench_accounts WHERE aid = 17;"}) {
    const uint64_t before = cache.stats().normalized_hits;
    auto f = cache.Get(other);
    ASSERT_TRUE(f.ok()) << other;
    EXPECT_EQ(cache.stats().normalized_hits, before) << other;
    EXPECT_EQ((**f)[0].text, absl::string_view(other).substr(
                                 0, absl::string_view(other).size() - 1))
        << other;
  }
  // Unusual text takes the parse, and still shares by its shape.
  ASSERT_TRUE(cache.Get("SELECT E'\\x41' /* c */ FROM t WHERE id = 1").ok());
  ASSERT_TRUE(cache.Get("SELECT E'\\x42' /* c */ FROM t WHERE id = 2").ok());
  EXPECT_EQ(cache.stats().normalized_hits, 4u);
}

TEST(FactsCacheTest, ErrorsAreCachedAndLongTextIsNot) {
  FactsCache cache(10, /*max_text_bytes=*/32);
  EXPECT_FALSE(cache.Get("SELEC 1").ok());
  EXPECT_FALSE(cache.Get("SELEC 1").ok());
  EXPECT_EQ(cache.stats().hits, 1u);
  const std::string long_sql = "SELECT '" + std::string(100, 'x') + "'";
  ASSERT_TRUE(cache.Get(long_sql).ok());
  ASSERT_TRUE(cache.Get(long_sql).ok());
  EXPECT_EQ(cache.stats().entries, 1u);  // only the error entry.
}

TEST(FactsCacheTest, ConcurrentUseIsConsistent) {
  FactsCache cache(50);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, &failures, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string sql = "SELECT * FROM t" +
                                std::to_string((i * 7 + t) % 80) +
                                " WHERE id = 1";
        auto facts = cache.Get(sql);
        if (!facts.ok() || (**facts)[0].relations.size() != 1 ||
            (**facts)[0].relations[0].name !=
                "t" + std::to_string((i * 7 + t) % 80)) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(cache.stats().entries, 50u);
  EXPECT_EQ(cache.stats().hits + cache.stats().normalized_hits +
                cache.stats().misses,
            2000u);
}

}  // namespace
}  // namespace warden::policy::sql
