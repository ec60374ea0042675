#include "controlplane/audit/export.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "common/proto_time.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/names.h"
#include "controlplane/audit/leaf.h"

namespace warden::controlplane::audit {
namespace {

using nlohmann::json;

int64_t Millis(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000 + ts.nanos() / 1000000;
}

template <typename List, typename T>
bool AnyOf(const List& list, const T& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// OCSF Datastore Activity activity_id from PostgreSQL command tags.
std::pair<int, const char*> DatastoreActivity(
    const warden::v1::Statement& st) {
  for (const std::string& tag : st.command_tags()) {
    if (tag == "DELETE" || absl::StartsWith(tag, "DROP") || tag == "TRUNCATE TABLE") {
      return {7, "Delete"};
    }
  }
  for (const std::string& tag : st.command_tags()) {
    if (absl::StartsWith(tag, "CREATE")) return {6, "Create"};
    if (tag == "INSERT" || tag == "COPY" || tag == "MERGE") return {5, "Write"};
    if (tag == "UPDATE" || absl::StartsWith(tag, "ALTER")) return {2, "Update"};
  }
  for (const std::string& tag : st.command_tags()) {
    if (tag == "SELECT") return {4, "Query"};
  }
  return {99, "Other"};
}

json Actor(const warden::v1::AuditEvent& e) {
  json user = {{"name", e.identity().user()}};
  if (e.identity().groups_size() > 0) {
    json groups = json::array();
    for (const auto& g : e.identity().groups()) groups.push_back({{"name", g}});
    user["groups"] = std::move(groups);
  }
  switch (e.identity().kind()) {
    case warden::v1::IDENTITY_KIND_HUMAN:
      user["type_id"] = 1;  // User
      user["type"] = "User";
      break;
    case warden::v1::IDENTITY_KIND_AGENT:
    case warden::v1::IDENTITY_KIND_SERVICE:
      user["type_id"] = 3;  // System
      user["type"] = "System";
      break;
    default:
      break;
  }
  return {{"user", std::move(user)},
          {"session", {{"uid", e.session_id()}}}};
}

}  // namespace

bool Matches(const warden::v1::AuditFilter& filter,
             const warden::v1::AuditLeaf& leaf) {
  const warden::v1::AuditEvent& e = leaf.event();
  // A failed login has no identity yet: the name it claimed is who was
  // targeted, and an investigation searches by it (red team).
  // Names match as everywhere else in Warden: ignoring case, beyond ASCII
  // (common/names.h), so `--user alice@example.com` finds the events of
  // Alice@Example.COM too (red team).
  const auto any_user = [&](const std::string& name) {
    if (name.empty()) return false;
    const std::string folded = FoldName(name);
    for (const std::string& u : filter.users()) {
      if (u == name || FoldName(u) == folded) return true;
    }
    return false;
  };
  if (filter.users_size() > 0 && !any_user(e.identity().user()) &&
      !(e.identity().user().empty() && e.has_authentication() &&
        any_user(e.authentication().claimed_user()))) {
    return false;
  }
  if (filter.environments_size() > 0 &&
      !AnyOf(filter.environments(), e.environment())) {
    return false;
  }
  if (filter.kinds_size() > 0 &&
      !AnyOf(filter.kinds(), static_cast<int>(e.kind()))) {
    return false;
  }
  if (filter.decisions_size() > 0 &&
      (!e.has_statement() ||
       !AnyOf(filter.decisions(), static_cast<int>(e.statement().decision())))) {
    return false;
  }
  return true;
}

namespace {

// JSON allows U+2028, U+2029 and U+0085 raw inside strings, but readers
// that split lines on Unicode's line breaks (Python's splitlines, some
// SIEM shippers) cut a record there: a database client could split one
// OCSF line into several, some unparseable (red team pass 7). Escaped,
// each record stays one line. They occur only inside strings (JSON's own
// whitespace is ASCII).
std::string EscapeUnicodeLineBreaks(std::string text) {
  return absl::StrReplaceAll(text, {{"\xE2\x80\xA8", "\\u2028"},
                                    {"\xE2\x80\xA9", "\\u2029"},
                                    {"\xC2\x85", "\\u0085"}});
}

}  // namespace

std::string ToOcsfJson(const warden::v1::AuditLeaf& leaf, uint64_t index) {
  const warden::v1::AuditEvent& e = leaf.event();
  json out = {
      {"time", Millis(e.time())},
      {"severity_id", 1},
      {"severity", "Informational"},
      {"metadata",
       {{"version", "1.1.0"},
        {"product", {{"name", "Warden"}, {"vendor_name", "Warden"}}},
        {"log_provider", leaf.source()},
        {"uid", absl::StrCat(leaf.source(), "/", e.sequence())},
        {"sequence", e.sequence()}}},
      {"actor", Actor(e)},
      {"unmapped",
       {{"warden_index", index},
        {"warden_source", leaf.source()},
        {"warden_environment", e.environment()},
        {"warden_proxy", e.proxy_id()}}},
  };
  int class_uid = 0, category_uid = 0, activity_id = 0;
  std::string class_name, activity_name;
  bool success = true;
  if (e.has_statement()) {
    const warden::v1::Statement& st = e.statement();
    class_uid = 6005;
    category_uid = 6;
    class_name = "Datastore Activity";
    auto [id, name] = DatastoreActivity(st);
    activity_id = id;
    activity_name = name;
    success = st.decision() == warden::v1::POLICY_ACTION_ALLOW;
    out["database"] = {{"name", st.database()}, {"type", "PostgreSQL"}};
    if (st.tables_size() > 0) out["table"] = {{"name", st.tables(0)}};
    const std::string& text =
        !st.text().empty() ? st.text() : st.normalized_text();
    if (!text.empty()) out["query_info"] = {{"query_string", text}};
    out["unmapped"]["warden_decision"] =
        warden::v1::PolicyAction_Name(st.decision());
    out["unmapped"]["warden_rule"] = st.rule();
    out["unmapped"]["warden_policy"] = st.policy();
    out["unmapped"]["warden_bundle_revision"] = st.bundle_revision();
    out["unmapped"]["warden_command_tags"] = st.command_tags();
    out["unmapped"]["warden_tables"] = st.tables();
    out["unmapped"]["warden_fingerprint"] = st.fingerprint();
    out["unmapped"]["warden_protocol"] = st.protocol();
    if (st.phase() == warden::v1::STATEMENT_PHASE_RESULT) {
      // What the database answered: OCSF's duration (ms) and status code
      // (the SQLSTATE); the statement it answers by its intent's sequence.
      out["unmapped"]["warden_phase"] = "result";
      out["unmapped"]["warden_intent_sequence"] = st.intent_sequence();
      out["unmapped"]["warden_rows"] = st.rows();
      out["duration"] = st.duration().seconds() * 1000 +
                        st.duration().nanos() / 1000000;
      out["status_code"] = st.sqlstate();
      success = success && st.sqlstate() == "00000";
      if (!st.reason().empty()) out["status_detail"] = st.reason();
    } else {
      out["unmapped"]["warden_phase"] = "intent";
    }
    if (!success && !out.contains("status_detail")) {
      out["status_detail"] = st.reason();
    }
  } else if (e.has_authentication() || e.has_session_start() ||
             e.has_session_end()) {
    class_uid = 3002;
    category_uid = 3;
    class_name = "Authentication";
    const bool logoff = e.has_session_end();
    activity_id = logoff ? 2 : 1;
    activity_name = logoff ? "Logoff" : "Logon";
    if (e.has_authentication()) {
      success = e.authentication().success();
      out["auth_protocol"] = e.authentication().method();
      if (!success) out["status_detail"] = e.authentication().reason();
      if (e.identity().user().empty()) {
        out["user"] = {{"name", e.authentication().claimed_user()}};
      }
    }
    if (e.has_session_start()) {
      out["src_endpoint"] = {{"ip", e.session_start().client_address()}};
      out["is_cleartext"] = !e.session_start().client_tls();
      out["unmapped"]["warden_database"] = e.session_start().database();
    }
    if (e.has_session_end()) {
      out["unmapped"]["warden_end_reason"] =
          warden::v1::SessionEndReason_Name(e.session_end().reason());
    }
    out["user"] = out.contains("user") ? out["user"] : out["actor"]["user"];
  } else if (e.has_admin()) {
    class_uid = 6003;
    category_uid = 6;
    class_name = "API Activity";
    activity_id = 99;
    activity_name = e.admin().action();
    success = e.admin().success();
    out["api"] = {{"operation", e.admin().action()}};
  } else {
    // No body Warden can name (a proxy's claim ingest took away, or bytes
    // that did not decode): OCSF's base event, never an API activity.
    class_uid = 0;
    category_uid = 0;
    class_name = "Base Event";
    activity_id = 0;
    activity_name = "Unknown";
    success = false;
  }
  if (e.has_repairs()) {
    // What ingest changed, so a SIEM rule can tell a claim from a fact.
    const warden::v1::EventRepairs& r = e.repairs();
    json repairs = json::object();
    if (r.unauthorized_kind() != warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED) {
      repairs["unauthorized_kind"] =
          warden::v1::AuditEventKind_Name(r.unauthorized_kind());
    }
    if (r.unauthorized_body()) repairs["unauthorized_body"] = true;
    if (!r.unauthorized_environment().empty()) {
      repairs["unauthorized_environment"] = r.unauthorized_environment();
    }
    if (!r.invalid_utf8().empty()) repairs["invalid_utf8"] = r.invalid_utf8();
    if (!r.truncated().empty()) repairs["truncated"] = r.truncated();
    if (r.unknown_field_bytes() > 0) {
      repairs["unknown_field_bytes"] = r.unknown_field_bytes();
    }
    if (!r.undecodable().empty()) {
      repairs["undecodable_bytes"] = r.undecodable().size();
    }
    out["unmapped"]["warden_repairs"] = std::move(repairs);
  }
  out["class_uid"] = class_uid;
  out["class_name"] = class_name;
  out["category_uid"] = category_uid;
  out["activity_id"] = activity_id;
  out["activity_name"] = activity_name;
  out["type_uid"] = class_uid * 100 + activity_id;
  out["status_id"] = success ? 1 : 2;
  out["status"] = success ? "Success" : "Failure";
  return EscapeUnicodeLineBreaks(
      out.dump(-1, ' ', false, json::error_handler_t::replace));
}

absl::Status Export(uint64_t index, const std::string& leaf_bytes,
                    warden::v1::AuditFormat format,
                    warden::v1::ExportedEvent* out,
                    warden::v1::AuditLeaf* record) {
  auto parts = SplitLeaf(leaf_bytes);
  if (!parts.ok()) return parts.status();
  if (!ParseAuditLeaf(parts->second, record)) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf ", index, " is not an audit leaf"));
  }
  out->set_index(index);
  out->set_leaf(leaf_bytes);
  if (format == warden::v1::AUDIT_FORMAT_OCSF_JSON) {
    out->set_ocsf_json(ToOcsfJson(*record, index));
  } else {
    *out->mutable_record() = *record;
    // An older version's leaf may hold unknown fields nested to the
    // parser's limit: encoded one level deeper, in the response, they
    // would not parse on the reader's side.
    out->mutable_record()->DiscardUnknownFields();
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> FirstIndexAtOrAfter(const Ledger& ledger,
                                             absl::Time since) {
  auto tree = ledger.Tree();
  if (!tree.ok()) return tree.status();
  uint64_t lo = 0, hi = tree->size();
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    auto entries = ledger.Entries(mid, mid + 1, 1);
    if (!entries.ok()) return entries.status();
    if (entries->empty()) break;
    auto parts = SplitLeaf((*entries)[0].leaf());
    warden::v1::AuditLeaf leaf;
    if (!parts.ok() || !ParseAuditLeaf(parts->second, &leaf)) {
      return absl::DataLossError(absl::StrCat("leaf ", mid, " does not parse"));
    }
    const absl::Time t = FromTimestamp(leaf.received_at());
    if (t < since) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

}  // namespace warden::controlplane::audit
