// Parse cost of statement facts, uncached vs cached (policy/sql).
//   bazel run //tests/bench:sql_facts_bench
#include <string>

#include "benchmark/benchmark.h"
#include "policy/sql/cache.h"
#include "policy/sql/facts.h"

namespace {

const char* const kOltp = "SELECT abalance FROM pgbench_accounts WHERE aid = 4711";
const char* const kReport =
    "WITH recent AS (SELECT customer_id, sum(total) AS spent FROM orders "
    "WHERE placed_at > now() - interval '7 days' GROUP BY customer_id) "
    "SELECT c.name, lower(c.email), r.spent FROM customers c JOIN recent r "
    "ON r.customer_id = c.id ORDER BY r.spent DESC LIMIT 20";
const char* const kDoBlock =
    "DO $$ DECLARE n int; BEGIN SELECT count(*) INTO n FROM t; "
    "IF n > 0 THEN DELETE FROM t WHERE id < 10; END IF; "
    "EXECUTE 'VACUUM t'; END $$";

void BM_Analyze(benchmark::State& state, const char* sql) {
  for (auto _ : state) {
    auto facts = warden::policy::sql::Analyze(sql);
    benchmark::DoNotOptimize(facts);
  }
}

void BM_Cached(benchmark::State& state, const char* sql) {
  warden::policy::sql::FactsCache cache;
  for (auto _ : state) {
    auto facts = cache.Get(sql);
    benchmark::DoNotOptimize(facts);
  }
}

BENCHMARK_CAPTURE(BM_Analyze, oltp, kOltp);
BENCHMARK_CAPTURE(BM_Cached, oltp, kOltp);
BENCHMARK_CAPTURE(BM_Analyze, report, kReport);
BENCHMARK_CAPTURE(BM_Cached, report, kReport);
BENCHMARK_CAPTURE(BM_Analyze, do_block, kDoBlock);
BENCHMARK_CAPTURE(BM_Cached, do_block, kDoBlock);

}  // namespace

BENCHMARK_MAIN();
