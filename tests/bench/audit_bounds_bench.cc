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

namespace {

warden::v1::AuditEvent Intent(const std::string& text) {
  warden::v1::AuditEvent e;
  e.set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  e.set_proxy_id("proxy-eu-1");
  e.set_environment("prod");
  e.set_session_id("5f0c2a9e41d7b3c8");
  e.set_sequence(123456);
  auto* id = e.mutable_identity();
  id->set_user("alice@example.com");
  id->add_groups("engineers");
  id->add_groups("oncall");
  id->set_kind(warden::v1::IDENTITY_KIND_HUMAN);
  id->set_auth_method("oidc:okta");
  (*id->mutable_attributes())["department"] = "Engineering";
  auto* st = e.mutable_statement();
  st->set_phase(warden::v1::STATEMENT_PHASE_INTENT);
  st->set_database("shop");
  st->set_protocol("simple");
  st->add_command_tags("SELECT");
  st->add_tables("public.pgbench_accounts");
  st->add_columns("abalance");
  st->add_columns("aid");
  st->set_fingerprint("a1b2c3d4e5f60718");
  st->set_text(text);
  st->set_decision(warden::v1::POLICY_ACTION_ALLOW);
  st->set_policy("production-guardrails");
  st->set_bundle_revision(42);
  st->set_bundle_digest(std::string(64, 'f'));
  st->set_audit_level(warden::v1::AUDIT_LEVEL_FULL);
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
