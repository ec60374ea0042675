// The audit events the benchmarks record, built in one place so that every
// benchmark measures the same shapes:
// - UpdateIntent: what a proxy sends warden-control for an UPDATE (about
//   311 bytes encoded; audit_bench and ingest_bench).
// - SessionFields and PgbenchSelect: what a session records for a pgbench
//   select-only statement, split as sessions record it: the fields a
//   session's events share, and each event's own part (recorder_bench,
//   audit_bounds_bench).
#ifndef WARDEN_TESTS_BENCH_EVENTS_H_
#define WARDEN_TESTS_BENCH_EVENTS_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::bench {

inline warden::v1::AuditEvent UpdateIntent(const std::string& proxy,
                                           uint64_t seq) {
  warden::v1::AuditEvent e;
  e.set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  e.set_proxy_id(proxy);
  e.set_environment("bench");
  e.set_session_id("0123456789abcdef");
  e.set_sequence(seq);
  e.mutable_time()->set_seconds(1790000000 + seq / 1000);
  e.mutable_identity()->set_user("alice@example.com");
  e.mutable_identity()->add_groups("engineers");
  e.mutable_identity()->set_kind(warden::v1::IDENTITY_KIND_HUMAN);
  auto* st = e.mutable_statement();
  st->set_phase(warden::v1::STATEMENT_PHASE_INTENT);
  st->set_database("shop");
  st->add_command_tags("UPDATE");
  st->add_tables("public.orders");
  st->set_fingerprint("a1b2c3d4e5f60718");
  st->set_audit_level(warden::v1::AUDIT_LEVEL_FULL);
  st->set_text(absl::StrCat(
      "UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = ",
      seq));
  st->set_decision(warden::v1::POLICY_ACTION_ALLOW);
  st->set_policy("production-guardrails");
  st->set_bundle_revision(7);
  st->set_bundle_digest(std::string(64, 'e'));
  st->set_protocol("extended");
  return e;
}

// Identity, environment and session id of a session (an OIDC user).
inline warden::v1::AuditEvent SessionFields() {
  warden::v1::AuditEvent e;
  e.set_environment("prod");
  e.set_session_id("5f0c2a9e41d7b3c8");
  auto* id = e.mutable_identity();
  id->set_user("alice@example.com");
  id->add_groups("engineers");
  id->add_groups("oncall");
  id->set_kind(warden::v1::IDENTITY_KIND_HUMAN);
  id->set_auth_method("oidc:okta");
  (*id->mutable_attributes())["department"] = "Engineering";
  return e;
}

// A pgbench select-only statement's intent, its own part (no session
// fields).
inline warden::v1::AuditEvent PgbenchSelect(const std::string& text) {
  warden::v1::AuditEvent e;
  e.set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  auto* st = e.mutable_statement();
  st->set_phase(warden::v1::STATEMENT_PHASE_INTENT);
  st->set_database("bench");
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

}  // namespace warden::bench

#endif  // WARDEN_TESTS_BENCH_EVENTS_H_
