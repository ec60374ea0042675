#include "controlplane/cli/remote_policy.h"

#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "policy/lang/compile.h"
#include "policy/lang/sources.h"
#include "proto/warden/v1/control.grpc.pb.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::controlplane::cli {
namespace {

using policy::lang::Diagnostic;
using policy::lang::SourceFile;

std::unique_ptr<warden::v1::PolicyService::Stub> PolicyStub(
    const Remote& remote) {
  return warden::v1::PolicyService::NewStub(remote.channel());
}

// A diagnostic, the server's or a local file's: {"file", "line",
// "column", "message", "hint"} (policy_commands prints the same shape).
Json DiagnosticJson(const Diagnostic& d) {
  return {{"file", d.file},
          {"line", d.line},
          {"column", d.column},
          {"message", d.message},
          {"hint", d.hint}};
}

Diagnostic DiagnosticOf(const Json& d) {
  return {StringAt(d, "file"), static_cast<int>(IntAt(d, "line")),
          static_cast<int>(IntAt(d, "column")), StringAt(d, "message"),
          StringAt(d, "hint")};
}

// ---------------------------------------------------------------------------
// policy push

warden::v1::PushPolicyRequest PushRequest(
    const PushOptions& options, const std::vector<SourceFile>& files) {
  warden::v1::PushPolicyRequest request;
  for (const SourceFile& f : files) {
    auto* s = request.add_sources();
    s->set_name(f.name);
    s->set_text(f.text);
  }
  request.set_message(options.message);
  request.set_dry_run(options.dry_run);
  request.set_skip_tests(options.skip_tests);
  return request;
}

Json PushJson(const PushOptions& options,
              const warden::v1::PushPolicyResponse& response) {
  Json diagnostics = Json::array();
  for (const auto& d : response.diagnostics()) {
    diagnostics.push_back(DiagnosticJson(
        {d.file(), d.line(), d.column(), d.message(), d.hint()}));
  }
  return {{"accepted", response.diagnostics().empty()},
          {"dry_run", options.dry_run},
          {"unchanged", response.unchanged()},
          {"revision", response.revision()},
          {"digest", response.digest()},
          {"diagnostics", std::move(diagnostics)}};
}

// A rejected push's diagnostics go to `err`, the rest to `out`.
void PrintPushText(const Json& push, std::ostream& out, std::ostream& err) {
  if (!BoolAt(push, "accepted")) {
    const Json& diagnostics = push["diagnostics"];
    for (const Json& d : diagnostics) {
      err << TerminalSafe(DiagnosticOf(d).ToString()) << "\n";
    }
    const size_t n = diagnostics.size();
    err << "rejected: " << n << (n == 1 ? " problem" : " problems") << "\n";
  } else if (BoolAt(push, "dry_run")) {
    out << "dry run: valid, digest " << TerminalSafe(StringAt(push, "digest"))
        << "\n";
  } else if (BoolAt(push, "unchanged")) {
    out << "unchanged at revision " << UintAt(push, "revision") << "\n";
  } else {
    out << "revision " << UintAt(push, "revision") << " (digest "
        << TerminalSafe(StringAt(push, "digest")) << ")\n";
  }
}

grpc::Status GetFleet(const Remote& remote, const std::string& environment,
                      warden::v1::GetFleetStatusResponse* response) {
  warden::v1::GetFleetStatusRequest request;
  request.set_environment(environment);
  grpc::ClientContext context;
  remote.Prepare(&context);
  return PolicyStub(remote)->GetFleetStatus(&context, request, response);
}

// Polls GetFleetStatus until every proxy connected at the first look runs
// `revision` or newer. JSON: {"revision", "waited": {"proxy_id":
// running_revision}}; text: "N proxies run revision R".
int WaitForFleet(const Remote& remote, uint64_t revision, absl::Duration wait,
                 Format format, std::ostream& out, std::ostream& err) {
  const absl::Time deadline = absl::Now() + wait;
  std::set<std::string> awaited;  // connected at the first look
  bool first = true;
  while (true) {
    warden::v1::GetFleetStatusResponse response;
    const grpc::Status status = GetFleet(remote, "", &response);
    if (!status.ok()) return remote.Failed(status, out, err);
    std::vector<std::string> lagging, refused;
    Json waited = Json::object();
    for (const auto& p : response.proxies()) {
      if (first && p.connected()) awaited.insert(p.proxy_id());
      if (awaited.count(p.proxy_id()) == 0) continue;
      waited[p.proxy_id()] = p.running_revision();
      if (p.running_revision() >= revision) continue;
      if (p.nacked_revision() >= revision) {
        refused.push_back(absl::StrCat(
            TerminalSafe(p.proxy_id()), " refused revision ",
            p.nacked_revision(), ": ", TerminalSafe(p.last_error())));
      } else {
        lagging.push_back(
            absl::StrCat(TerminalSafe(p.proxy_id()), " runs ",
                         p.running_revision(), " (sent ", p.sent_revision(),
                         p.connected() ? "" : ", disconnected", ")"));
      }
    }
    first = false;
    if (!refused.empty()) {
      for (const auto& r : refused) err << r << "\n";
      return kExitFailed;
    }
    if (lagging.empty()) {
      // Every awaited proxy, also one that left the fleet since.
      const size_t n = awaited.size();
      return Report(
          format, {{"revision", revision}, {"waited", waited}},
          [n](const Json& result, std::ostream& out) {
            out << n << (n == 1 ? " proxy runs" : " proxies run")
                << " revision " << UintAt(result, "revision") << "\n";
          },
          out);
    }
    if (absl::Now() >= deadline) {
      err << "waited " << absl::FormatDuration(wait)
          << "; not running revision " << revision << " yet:\n";
      for (const auto& l : lagging) err << "  " << l << "\n";
      return kExitFailed;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

// ---------------------------------------------------------------------------
// policy history

Json RevisionJson(const warden::v1::BundleSummary& b) {
  return {{"revision", b.revision()},
          {"parent_revision", b.parent_revision()},
          {"digest", b.digest()},
          {"created_by", b.created_by()},
          {"created_at", TimeJson(b.created_at())},
          {"message", b.message()},
          {"rollback_of", b.rollback_of()},
          {"sources", b.source_names()}};
}

void PrintHistoryText(const Json& history, std::ostream& out) {
  const Json& revisions = history["revisions"];
  if (revisions.empty()) {
    out << "no revision yet\n";
    return;
  }
  out << absl::StrFormat("%-8s %-20s %-16s %-12s %s\n", "REVISION", "CREATED",
                         "BY", "DIGEST", "MESSAGE");
  for (const Json& b : revisions) {
    std::string message = StringAt(b, "message");
    if (const uint64_t of = UintAt(b, "rollback_of"); of != 0) {
      message = absl::StrCat("rollback of ", of, message.empty() ? "" : ": ",
                             message);
    }
    out << absl::StrFormat("%-8d %-20s %-16s %-12s %s\n", UintAt(b, "revision"),
                           StringAt(b, "created_at"),
                           TerminalSafe(StringAt(b, "created_by")),
                           TerminalSafe(StringAt(b, "digest").substr(0, 12)),
                           TerminalSafe(message));
  }
}

// ---------------------------------------------------------------------------
// policy rollback

void PrintRollbackText(const Json& rollback, std::ostream& out) {
  out << "revision " << UintAt(rollback, "revision") << " (digest "
      << TerminalSafe(StringAt(rollback, "digest")) << "), rollback of "
      << UintAt(rollback, "rollback_of") << "\n";
}

// ---------------------------------------------------------------------------
// policy status

Json ProxyStatusJson(const warden::v1::ProxyStatus& p) {
  return {{"proxy_id", p.proxy_id()},
          {"environment", p.environment()},
          {"running_revision", p.running_revision()},
          {"sent_revision", p.sent_revision()},
          {"nacked_revision", p.nacked_revision()},
          {"last_error", p.last_error()},
          {"connected", p.connected()},
          {"last_seen", TimeJson(p.last_seen())}};
}

void PrintStatusText(const Json& status, std::ostream& out) {
  out << "current revision: " << UintAt(status, "current_revision") << "\n";
  const Json& proxies = status["proxies"];
  if (proxies.empty()) {
    out << "no proxies connected\n";
    return;
  }
  out << absl::StrFormat("%-24s %-12s %-8s %-8s %-9s %-20s %s\n", "PROXY",
                         "ENVIRONMENT", "RUNNING", "SENT", "CONNECTED",
                         "LAST SEEN", "LAST ERROR");
  for (const Json& p : proxies) {
    std::string error = StringAt(p, "last_error");
    if (const uint64_t nacked = UintAt(p, "nacked_revision"); nacked != 0) {
      error = absl::StrCat("NACK ", nacked, ": ", error);
    }
    out << absl::StrFormat(
        "%-24s %-12s %-8d %-8d %-9s %-20s %s\n",
        TerminalSafe(StringAt(p, "proxy_id")),
        TerminalSafe(StringAt(p, "environment")), UintAt(p, "running_revision"),
        UintAt(p, "sent_revision"), BoolAt(p, "connected") ? "yes" : "no",
        StringAt(p, "last_seen"), TerminalSafe(error));
  }
}

// ---------------------------------------------------------------------------
// policy diff

// Deterministic bytes of a rule, ignoring where it sits in its file: moving
// a rule down a line is not a change of what it does.
std::string RuleBytes(const warden::v1::Rule& rule) {
  warden::v1::Rule copy = rule;
  copy.clear_source();
  return copy.SerializeAsString();
}

std::string PolicySettingsBytes(const warden::v1::Policy& policy) {
  warden::v1::Policy copy = policy;
  copy.clear_rules();
  return copy.SerializeAsString();
}

struct Change {
  char op;  // '+', '-', '~'
  std::string policy;
  std::string rule;  // empty: the policy itself.
  std::string what;  // "order" for a reordering; else empty.
};

void DiffPolicies(const warden::v1::PolicyBundle& local,
                  const warden::v1::PolicyBundle& remote,
                  std::vector<Change>* changes) {
  std::map<std::string, const warden::v1::Policy*> theirs;
  for (const auto& p : remote.policies()) theirs[p.name()] = &p;
  std::set<std::string> ours;
  for (const auto& p : local.policies()) {
    ours.insert(p.name());
    auto it = theirs.find(p.name());
    if (it == theirs.end()) {
      changes->push_back({'+', p.name(), "", ""});
      for (const auto& r : p.rules())
        changes->push_back({'+', p.name(), r.name(), ""});
      continue;
    }
    const warden::v1::Policy& old = *it->second;
    if (PolicySettingsBytes(p) != PolicySettingsBytes(old)) {
      changes->push_back({'~', p.name(), "", ""});
    }
    std::map<std::string, const warden::v1::Rule*> old_rules;
    for (const auto& r : old.rules()) old_rules[r.name()] = &r;
    std::set<std::string> new_names;
    std::vector<std::string> common_new_order;
    for (const auto& r : p.rules()) {
      new_names.insert(r.name());
      auto o = old_rules.find(r.name());
      if (o == old_rules.end()) {
        changes->push_back({'+', p.name(), r.name(), ""});
        continue;
      }
      common_new_order.push_back(r.name());
      if (RuleBytes(r) != RuleBytes(*o->second)) {
        changes->push_back({'~', p.name(), r.name(), ""});
      }
    }
    std::vector<std::string> common_old_order;
    for (const auto& r : old.rules()) {
      if (new_names.count(r.name()) == 0) {
        changes->push_back({'-', p.name(), r.name(), ""});
      } else {
        common_old_order.push_back(r.name());
      }
    }
    // Rules are tried in order: the same rules reordered decide differently.
    if (common_new_order != common_old_order) {
      changes->push_back({'~', p.name(), "", "order"});
    }
  }
  for (const auto& p : remote.policies()) {
    if (ours.count(p.name())) continue;
    changes->push_back({'-', p.name(), "", ""});
    for (const auto& r : p.rules())
      changes->push_back({'-', p.name(), r.name(), ""});
  }
}

// {"op", "policy", "rule"?, "what"?}
Json ChangeJson(const Change& c) {
  Json j = {{"op", std::string(1, c.op)}, {"policy", c.policy}};
  if (!c.rule.empty()) j["rule"] = c.rule;
  if (!c.what.empty()) j["what"] = c.what;
  return j;
}

// "+ policy P rule R", "~ policy P rule order", ...
std::string ChangeText(const Json& c) {
  std::string out =
      absl::StrCat(StringAt(c, "op"), " policy ", StringAt(c, "policy"));
  if (const std::string rule = StringAt(c, "rule"); !rule.empty()) {
    absl::StrAppend(&out, " rule ", rule);
  }
  if (StringAt(c, "what") == "order") absl::StrAppend(&out, " rule order");
  return out;
}

void PrintDiffText(const Json& diff, std::ostream& out) {
  const Json& changes = diff["changes"];
  for (const Json& c : changes) out << TerminalSafe(ChangeText(c)) << "\n";
  const uint64_t revision = UintAt(diff, "revision");
  if (changes.empty()) {
    out << "no changes against revision " << revision << "\n";
  } else {
    out << changes.size() << (changes.size() == 1 ? " change" : " changes")
        << " against revision " << revision << "\n";
  }
}

}  // namespace

int RunPush(const PushOptions& options, std::ostream& out, std::ostream& err) {
  absl::Duration wait = absl::ZeroDuration();
  if (!options.wait.empty() && (!absl::ParseDuration(options.wait, &wait) ||
                                wait <= absl::ZeroDuration())) {
    return UsageError(absl::StrCat("--wait ", options.wait,
                                   " is not a positive duration (e.g. 30s)"),
                      err);
  }
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  auto files = policy::lang::ReadSources(options.paths);
  if (!files.ok()) return UsageError(files.status().message(), err);
  warden::v1::PushPolicyResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status = PolicyStub(remote)->PushPolicy(
      &context, PushRequest(options, *files), &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  const Json push = PushJson(options, response);
  if (options.format == Format::kJson) {
    WriteJson(push, out);
  } else {
    PrintPushText(push, out, err);
  }
  const bool accepted = BoolAt(push, "accepted");
  if (!accepted || options.dry_run || wait <= absl::ZeroDuration()) {
    return accepted ? kExitOk : kExitFailed;
  }
  return WaitForFleet(remote, response.revision(), wait, options.format, out,
                      err);
}

int RunHistory(const HistoryOptions& options, std::ostream& out,
               std::ostream& err) {
  if (options.limit <= 0) return UsageError("--limit must be at least 1", err);
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  auto stub = PolicyStub(remote);
  Json revisions = Json::array();
  const auto have = [&] { return static_cast<int>(revisions.size()); };
  uint64_t before = 0;
  do {
    warden::v1::ListHistoryRequest request;
    request.set_page_size(options.limit - have());
    request.set_before_revision(before);
    warden::v1::ListHistoryResponse response;
    grpc::ClientContext context;
    remote.Prepare(&context);
    const grpc::Status status = stub->ListHistory(&context, request, &response);
    if (!status.ok()) return remote.Failed(status, out, err);
    for (const auto& b : response.bundles()) {
      if (have() < options.limit) revisions.push_back(RevisionJson(b));
    }
    before = response.next_before_revision();
  } while (before != 0 && have() < options.limit);
  return Report(options.format, {{"revisions", std::move(revisions)}},
                PrintHistoryText, out);
}

int RunRollback(const RollbackOptions& options, std::ostream& out,
                std::ostream& err) {
  if (options.revision == 0) {
    return UsageError(
        "name the revision to roll back to (see `policy history`)", err);
  }
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::RollbackRequest request;
  request.set_to_revision(options.revision);
  request.set_message(options.message);
  warden::v1::RollbackResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      PolicyStub(remote)->Rollback(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  return Report(options.format,
                {{"revision", response.revision()},
                 {"digest", response.digest()},
                 {"rollback_of", options.revision}},
                PrintRollbackText, out);
}

int RunStatus(const StatusOptions& options, std::ostream& out,
              std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::GetFleetStatusResponse response;
  const grpc::Status status = GetFleet(remote, options.environment, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  Json proxies = Json::array();
  for (const auto& p : response.proxies()) {
    proxies.push_back(ProxyStatusJson(p));
  }
  return Report(options.format,
                {{"current_revision", response.current_revision()},
                 {"proxies", std::move(proxies)}},
                PrintStatusText, out);
}

int RunDiff(const DiffOptions& options, std::ostream& out, std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  auto files = policy::lang::ReadSources(options.paths);
  if (!files.ok()) return UsageError(files.status().message(), err);
  std::vector<Diagnostic> diags;
  auto local = policy::lang::Compile(*files, &diags);
  if (!local.ok()) {
    if (options.format == Format::kJson) {
      Json list = Json::array();
      for (const auto& d : diags) list.push_back(DiagnosticJson(d));
      WriteJson({{"valid", false}, {"diagnostics", std::move(list)}}, out);
    } else {
      for (const auto& d : diags) err << d.ToString() << "\n";
      if (diags.empty()) err << "invalid: " << local.status().message() << "\n";
    }
    return kExitFailed;
  }

  warden::v1::GetBundleResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status = PolicyStub(remote)->GetBundle(
      &context, warden::v1::GetBundleRequest(), &response);
  warden::v1::PolicyBundle theirs;
  uint64_t revision = 0;
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    // Nothing pushed yet: everything local is new.
  } else if (!status.ok()) {
    return remote.Failed(status, out, err);
  } else {
    revision = response.bundle().revision();
    if (!theirs.ParseFromString(response.bundle().bundle())) {
      err << "error: the server's bundle at revision " << revision
          << " does not parse as a PolicyBundle\n";
      return kExitFailed;
    }
  }

  std::vector<Change> changes;
  DiffPolicies(*local, theirs, &changes);
  Json list = Json::array();
  for (const auto& c : changes) list.push_back(ChangeJson(c));
  Report(options.format,
         {{"revision", revision},
          {"local_digest", local->digest()},
          {"server_digest", theirs.digest()},
          {"changes", std::move(list)}},
         PrintDiffText, out);
  return changes.empty() ? kExitOk : kExitDifferences;
}

}  // namespace warden::controlplane::cli
