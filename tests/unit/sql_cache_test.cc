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
  ASSERT_TRUE(cache.Get("SELECT 1").ok());
  ASSERT_TRUE(cache.Get("SELECT 2").ok());
  ASSERT_TRUE(cache.Get("SELECT 1").ok());  // 1 is now the most recent.
  ASSERT_TRUE(cache.Get("SELECT 3").ok());  // evicts 2.
  EXPECT_EQ(cache.stats().entries, 2u);
  const uint64_t misses = cache.stats().misses;
  ASSERT_TRUE(cache.Get("SELECT 1").ok());
  EXPECT_EQ(cache.stats().misses, misses);  // still cached.
  ASSERT_TRUE(cache.Get("SELECT 2").ok());
  EXPECT_EQ(cache.stats().misses, misses + 1);  // was evicted.
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
  EXPECT_EQ(cache.stats().hits + cache.stats().misses, 2000u);
}

}  // namespace
}  // namespace warden::policy::sql
