// What audit_bounds::Bound costs per event, on the events a proxy records
// for pgbench (a statement's intent, its result) and on the cases it exists
// for (a statement that is not UTF-8, one larger than the text limit).
// The proxy bounds every event before spooling it; warden-control bounds at
// ingest only events that need it (see controlplane/server/audit_services).
//   bazel run -c opt //tests/bench:audit_bounds_bench
#include <string>

#include "benchmark/benchmark.h"
#include "common/audit_bounds.h"
#include "proto/warden/v1/audit.pb.h"
#include "tests/bench/events.h"

namespace {

// A statement's intent as the proxy bounds it: the session's fields and
// the statement's own.
warden::v1::AuditEvent Intent(const std::string& text) {
  warden::v1::AuditEvent e = warden::bench::SessionFields();
  e.set_proxy_id("proxy-eu-1");
  e.set_sequence(123456);
  e.MergeFrom(warden::bench::PgbenchSelect(text));
  return e;
}

void BM_Bound(benchmark::State& state, warden::v1::AuditEvent event) {
  for (auto _ : state) {
    warden::v1::AuditEvent copy = event;
    benchmark::DoNotOptimize(warden::audit_bounds::Bound(&copy));
  }
}

// The copy alone, to subtract from the rows above.
void BM_CopyOnly(benchmark::State& state) {
  const warden::v1::AuditEvent event =
      Intent("SELECT abalance FROM pgbench_accounts WHERE aid = 4711");
  for (auto _ : state) {
    warden::v1::AuditEvent copy = event;
    benchmark::DoNotOptimize(copy);
  }
}

warden::v1::AuditEvent Result() {
  warden::v1::AuditEvent e = Intent("");
  auto* st = e.mutable_statement();
  st->clear_text();
  st->set_phase(warden::v1::STATEMENT_PHASE_RESULT);
  st->set_rows(1);
  return e;
}

}  // namespace

BENCHMARK_CAPTURE(BM_Bound, pgbench_intent,
                  Intent("SELECT abalance FROM pgbench_accounts WHERE aid = "
                         "4711"));
BENCHMARK_CAPTURE(BM_Bound, pgbench_result, Result());
BENCHMARK_CAPTURE(BM_Bound, report_query_2kb, Intent(std::string(2048, 'x')));
BENCHMARK_CAPTURE(BM_Bound, not_utf8, Intent("SELECT 1 /* \xff\xfe */"));
BENCHMARK_CAPTURE(BM_Bound, text_over_limit_1mb,
                  Intent(std::string(1 << 20, 'x')));
BENCHMARK(BM_CopyOnly);

BENCHMARK_MAIN();
