// Cost of a policy decision per statement: analysis + evaluation, cold (a
// statement never seen) and from the parse cache, against the production
// guardrails (policy/examples/production.yaml).
//   bazel run -c opt //tests/bench:policy_bench
//   bazel-bin/tests/bench/policy_bench --policy=path/to/policy.yaml
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "dataplane/gate/gate.h"
#include "policy/engine/engine.h"
#include "policy/lang/compile.h"
#include "policy/lang/sources.h"
#include "policy/sql/facts.h"

namespace {

warden::v1::PolicyBundle* g_bundle = nullptr;

const warden::policy::engine::Subject kAlice{"alice", {"engineers"}, "human"};

const char* const kOltp =
    "SELECT abalance FROM pgbench_accounts WHERE aid = 4711";
const char* const kUpdate =
    "UPDATE pgbench_accounts SET abalance = abalance + -2345 WHERE aid = 4711";
const char* const kReport =
    "WITH recent AS (SELECT customer_id, sum(total) AS spent FROM orders "
    "WHERE placed_at > now() - interval '7 days' GROUP BY customer_id) "
    "SELECT c.name, lower(c.email), r.spent FROM customers c JOIN recent r "
    "ON r.customer_id = c.id ORDER BY r.spent DESC LIMIT 20";
const char* const kDenied = "DROP TABLE orders";
const char* const kDoBlock =
    "DO $$ DECLARE n int; BEGIN SELECT count(*) INTO n FROM t; "
    "IF n > 0 THEN DELETE FROM t WHERE id < 10; END IF; "
    "EXECUTE 'VACUUM t'; END $$";

// Analysis + evaluation of a statement the proxy has not seen before (what
// the gate does on a cache miss).
void BM_Cold(benchmark::State& state, const char* sql) {
  const warden::policy::engine::Matcher matcher(g_bundle);
  for (auto _ : state) {
    auto facts = warden::policy::sql::Analyze(sql);
    auto d = matcher.Evaluate(facts.ok() ? &*facts : nullptr, facts.status(),
                              kAlice, "prod", "shop");
    benchmark::DoNotOptimize(d);
  }
}

// What the proxy does per statement once the text is cached: cache lookup,
// evaluation and (for refusals) the wording.
void BM_Cached(benchmark::State& state, const char* sql) {
  warden::dataplane::gate::Gate gate(*g_bundle, 10000);
  for (auto _ : state) {
    auto v = gate.Judge(sql, kAlice, "prod", "shop");
    benchmark::DoNotOptimize(v);
  }
}

// Texts made before timing starts (PauseTiming/ResumeTiming costs about as
// much as what is measured here). 100,000 distinct texts, ten times the
// gate's text cache, so a text seen before has left the cache again.
std::vector<std::string> MakeTexts(bool update) {
  std::vector<std::string> texts;
  texts.reserve(100000);
  for (int64_t aid = 1; aid <= 100000; ++aid) {
    texts.push_back(
        update ? "UPDATE pgbench_accounts SET abalance = abalance + " +
                     std::to_string(aid % 5000 - 2500) +
                     " WHERE aid = " + std::to_string(aid)
               : "SELECT abalance FROM pgbench_accounts WHERE aid = " +
                     std::to_string(aid));
  }
  return texts;
}

// pgbench -M simple: the same SELECT with a new constant every time, so the
// exact text is never cached but its normalized form is. This is the whole
// per-statement cost of policy in the proxy for pgbench -S -M simple.
void BM_NewConstants(benchmark::State& state) {
  static const std::vector<std::string> texts = MakeTexts(false);
  warden::dataplane::gate::Gate gate(*g_bundle, 10000);
  size_t i = 0;
  for (auto _ : state) {
    auto v = gate.Judge(texts[i], kAlice, "prod", "shop");
    benchmark::DoNotOptimize(v);
    if (++i == texts.size()) i = 0;
  }
}
// What a proxy does with each policy revision for the directory in it:
// the name index and the look-alike index (UTS #39 skeletons of every
// userName and e-mail in each way it may be written). N users of two
// names each; "KiB" is the heap the Gate holds beyond the bundle itself.
void BM_GateWithDirectory(benchmark::State& state) {
  warden::v1::PolicyBundle bundle = *g_bundle;
  for (int i = 0; i < state.range(0); ++i) {
    auto* e = bundle.add_directory();
    e->set_user_name("user" + std::to_string(i) + "@example.com");
    e->add_aliases("first" + std::to_string(i) + ".last@example.com");
    e->set_active(true);
    e->add_groups("engineers");
  }
  size_t held = 0;
  for (auto _ : state) {
    const size_t before = mallinfo2().uordblks;
    warden::dataplane::gate::Gate gate(bundle, 10000);
    const size_t after = mallinfo2().uordblks;
    held = after - before - bundle.SpaceUsedLong();
    const warden::dataplane::gate::Gate* built = &gate;
    benchmark::DoNotOptimize(built);
  }
  state.counters["KiB"] = static_cast<double>(held) / 1024;
}
BENCHMARK(BM_GateWithDirectory)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond);

BENCHMARK(BM_NewConstants);

// pgbench TPC-B -M simple: the UPDATE with new constants every time. Its
// filter is decided by its shape, so its normalized form is cached too
// (before, each one cost BM_Cold/oltp_update).
void BM_NewConstantsUpdate(benchmark::State& state) {
  static const std::vector<std::string> texts = MakeTexts(true);
  warden::dataplane::gate::Gate gate(*g_bundle, 10000);
  size_t i = 0;
  for (auto _ : state) {
    auto v = gate.Judge(texts[i], kAlice, "prod", "shop");
    benchmark::DoNotOptimize(v);
    if (++i == texts.size()) i = 0;
  }
}
BENCHMARK(BM_NewConstantsUpdate);

BENCHMARK_CAPTURE(BM_Cold, oltp_select, kOltp);
BENCHMARK_CAPTURE(BM_Cached, oltp_select, kOltp);
BENCHMARK_CAPTURE(BM_Cold, oltp_update, kUpdate);
BENCHMARK_CAPTURE(BM_Cached, oltp_update, kUpdate);
BENCHMARK_CAPTURE(BM_Cold, report, kReport);
BENCHMARK_CAPTURE(BM_Cached, report, kReport);
BENCHMARK_CAPTURE(BM_Cold, denied_drop, kDenied);
BENCHMARK_CAPTURE(BM_Cached, denied_drop, kDenied);
BENCHMARK_CAPTURE(BM_Cold, do_block, kDoBlock);
BENCHMARK_CAPTURE(BM_Cached, do_block, kDoBlock);

}  // namespace

int main(int argc, char** argv) {
  std::string path = "policy/examples/production.yaml";
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    path = std::string(ws) + "/" + path;
  }
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--policy=", 9) == 0) {
      path = argv[i] + 9;
    } else {
      rest.push_back(argv[i]);
    }
  }
  auto sources = warden::policy::lang::ReadSources({path});
  if (!sources.ok()) {
    std::cerr << sources.status().message() << "\n";
    return 2;
  }
  auto bundle = warden::policy::lang::Compile(*sources);
  if (!bundle.ok()) {
    std::cerr << bundle.status().message() << "\n";
    return 2;
  }
  g_bundle = &*bundle;
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
