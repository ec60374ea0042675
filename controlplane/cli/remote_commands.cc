#include "controlplane/cli/remote_commands.h"

#include <arpa/inet.h>
#include <unicode/uchar.h>

#include <algorithm>
#include <deque>
#include <sstream>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "common/proto_time.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "common/names.h"
#include "common/crypto.h"
#include "common/files.h"
#include "absl/time/time.h"
#include "policy/lang/sources.h"
#include "controlplane/audit/checkpoint.h"
#include "controlplane/audit/leaf.h"
#include "controlplane/audit/merkle.h"
#include "controlplane/audit/verify.h"
#include "google/protobuf/util/json_util.h"
#include "proto/warden/v1/audit.grpc.pb.h"
#include "proto/warden/v1/control.grpc.pb.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::controlplane::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using policy::lang::Diagnostic;
using policy::lang::SourceFile;

constexpr struct {
  const char* name;
  warden::v1::TokenScope scope;
} kScopes[] = {
    {"policy:write", warden::v1::TOKEN_SCOPE_POLICY_WRITE},
    {"policy:read", warden::v1::TOKEN_SCOPE_POLICY_READ},
    {"audit:read", warden::v1::TOKEN_SCOPE_AUDIT_READ},
    {"approvals:decide", warden::v1::TOKEN_SCOPE_APPROVALS_DECIDE},
    {"admin", warden::v1::TOKEN_SCOPE_ADMIN},
    {"proxy:enroll", warden::v1::TOKEN_SCOPE_PROXY_ENROLL},
    {"db:connect", warden::v1::TOKEN_SCOPE_DATABASE_CONNECT},
    {"scim", warden::v1::TOKEN_SCOPE_SCIM},
};

std::string ScopeName(int scope) {
  for (const auto& s : kScopes) {
    if (s.scope == scope) return s.name;
  }
  return absl::StrCat("scope(", scope, ")");
}

int UsageError(absl::string_view message, std::ostream& err) {
  err << "wardenctl: " << message << "\n";
  return kExitUsage;
}

// "" for an unset timestamp.
std::string TimeText(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(ts.seconds()),
                          absl::UTCTimeZone());
}

json TimeJson(const google::protobuf::Timestamp& ts) {
  const std::string text = TimeText(ts);
  return text.empty() ? json(nullptr) : json(text);
}

json DiagnosticsJson(
    const google::protobuf::RepeatedPtrField<warden::v1::PolicyDiagnostic>& d) {
  json out = json::array();
  for (const auto& x : d) {
    out.push_back({{"file", x.file()},
                   {"line", x.line()},
                   {"column", x.column()},
                   {"message", x.message()},
                   {"hint", x.hint()}});
  }
  return out;
}

// One RPC's plumbing: channel, bearer token, deadline.
class Remote {
 public:
  // kExitOk, or a usage error already printed on `err`.
  int Open(const RemoteOptions& options, std::ostream& err) {
    options_ = &options;
    if (!absl::ParseDuration(options.connection.timeout, &timeout_) ||
        timeout_ <= absl::ZeroDuration()) {
      return UsageError(absl::StrCat("--timeout '", options.connection.timeout,
                                     "' is not a positive duration (e.g. 10s)"),
                        err);
    }
    auto channel = MakeChannel(options.connection);
    if (!channel.ok()) return UsageError(channel.status().message(), err);
    channel_ = *std::move(channel);
    return kExitOk;
  }

  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(timeout_));
    if (!options_->connection.token.empty()) {
      context->AddMetadata("authorization",
                           "Bearer " + options_->connection.token);
    }
  }

  // Prints a failed RPC and returns its exit code.
  int Failed(const grpc::Status& status, std::ostream& out,
             std::ostream& err) const {
    const std::string code = absl::StatusCodeToString(
        static_cast<absl::StatusCode>(status.error_code()));
    err << "error: " << code << ": " << TerminalSafe(status.error_message())
        << "\n";
    if (options_->format == Format::kJson) {
      out << json({{"error",
                    {{"code", code}, {"message", status.error_message()}}}})
                 .dump(2)
          << "\n";
    }
    return ExitForGrpc(status);
  }

  std::unique_ptr<warden::v1::PolicyService::Stub> Policy() const {
    return warden::v1::PolicyService::NewStub(channel_);
  }
  std::unique_ptr<warden::v1::TokenService::Stub> Tokens() const {
    return warden::v1::TokenService::NewStub(channel_);
  }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  std::unique_ptr<warden::v1::DirectoryService::Stub> Directory() const {
    return warden::v1::DirectoryService::NewStub(channel_);
  }
  std::unique_ptr<warden::v1::AuditLog::Stub> Audit() const {
    return warden::v1::AuditLog::NewStub(channel_);
  }
  // The audit calls several commands make, with deadline and token.
  grpc::Status Checkpoint(warden::v1::GetCheckpointResponse* out) const {
    grpc::ClientContext context;
    Prepare(&context);
    return Audit()->GetCheckpoint(&context, {}, out);
  }
  grpc::Status Entries(uint64_t start, uint64_t end,
                       warden::v1::GetEntriesResponse* out) const {
    warden::v1::GetEntriesRequest request;
    request.set_start(start);
    request.set_end(end);
    grpc::ClientContext context;
    Prepare(&context);
    return Audit()->GetEntries(&context, request, out);
  }

 private:
  const RemoteOptions* options_ = nullptr;
  absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;
};

json TokenJson(const warden::v1::TokenInfo& t, absl::Time now) {
  json scopes = json::array();
  for (int s : t.scopes()) scopes.push_back(ScopeName(s));
  std::string state = "active";
  if (t.has_revoked_at()) {
    state = "revoked";
  } else if (t.has_used_at()) {
    state = "used";
  } else if (t.has_expires_at() &&
             absl::FromUnixSeconds(t.expires_at().seconds()) <= now) {
    state = "expired";
  }
  return {{"id", t.id()},
          {"name", t.name()},
          {"scopes", std::move(scopes)},
          {"created_at", TimeJson(t.created_at())},
          {"expires_at", TimeJson(t.expires_at())},
          {"revoked_at", TimeJson(t.revoked_at())},
          {"created_by", t.created_by()},
          {"environment", t.environment()},
          {"proxy_id", t.proxy_id()},
          {"single_use", t.single_use()},
          {"used_at", TimeJson(t.used_at())},
          {"kind", t.kind()},
          {"environments", t.environments()},
          {"databases", t.databases()},
          {"groups", t.groups()},
          {"state", state}};
}

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
      for (const auto& r : p.rules()) changes->push_back({'+', p.name(), r.name(), ""});
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
    for (const auto& r : p.rules()) changes->push_back({'-', p.name(), r.name(), ""});
  }
}

std::string ChangeText(const Change& c) {
  std::string out = absl::StrCat(std::string(1, c.op), " policy ", c.policy);
  if (!c.rule.empty()) absl::StrAppend(&out, " rule ", c.rule);
  if (c.what == "order") absl::StrAppend(&out, " rule order");
  return out;
}

// The length of the UTF-8 sequence at the start of `s` and its code point,
// or 0 when it is not one (bad lead or continuation byte, overlong form,
// surrogate, beyond U+10FFFF, cut short).
size_t DecodeUtf8(absl::string_view s, char32_t* code_point) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  size_t length;
  char32_t cp;
  char32_t min;
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  *code_point = cp;
  return length;
}

// Code points that are printable but reorder or break what a terminal
// shows: C1 controls, line and paragraph separators, bidi controls.
// What a terminal would not show as itself: C1 controls, line and
// paragraph separators, and every default-ignorable code point (bidi
// controls, zero-width spaces and joiners, soft hyphen, variation
// selectors, Hangul fillers, tags) or format character, per ICU: a name
// with U+200B in it must not read as the name without (red team).
bool Deceptive(char32_t cp) {
  const UChar32 c = static_cast<UChar32>(cp);
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) ||
         u_charType(c) == U_FORMAT_CHAR;
}

}  // namespace

std::string TerminalSafe(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const unsigned char c = static_cast<unsigned char>(text[0]);
    char32_t cp = 0;
    const size_t n = DecodeUtf8(text, &cp);
    if (n == 0) {  // not UTF-8: the byte itself
      absl::StrAppendFormat(&out, "\\x%02x", c);
      text.remove_prefix(1);
      continue;
    }
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned>(cp));
    } else if (Deceptive(cp)) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned>(cp));
    } else {
      out.append(text.data(), n);
    }
    text.remove_prefix(n);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const Connection& connection) {
  if (connection.server.empty()) {
    return absl::InvalidArgumentError(
        "no control plane address: pass --server host:port or set "
        "WARDEN_SERVER");
  }
  if (connection.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "no CA to verify the control plane with: pass --ca-file or set "
        "WARDEN_CA_FILE (warden-control writes its CA to DATA_DIR/ca.crt; "
        "with an operator certificate, the CA that issued it)");
  }
  std::ifstream in(connection.ca_file, std::ios::binary);
  std::string pem((std::istreambuf_iterator<char>(in)),
                  std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) pem.clear();
  if (pem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read CA file '", connection.ca_file, "' (--ca-file)"));
  }
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = pem;
  // warden-control pages its answers under 4 MiB, but an entry recorded
  // before events were bounded may be larger: accept it rather than stop.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(connection.server,
                                   grpc::SslCredentials(tls), args);
}

int ExitForGrpc(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitAuth;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    default:
      return kExitFailed;
  }
}

namespace {

grpc::Status GetFleet(Remote& remote, const std::string& environment,
                      warden::v1::GetFleetStatusResponse* response) {
  warden::v1::GetFleetStatusRequest request;
  request.set_environment(environment);
  grpc::ClientContext context;
  remote.Prepare(&context);
  return remote.Policy()->GetFleetStatus(&context, request, response);
}

// Polls GetFleetStatus until every proxy connected at the first look runs
// `revision` or newer.
int WaitForFleet(Remote& remote, uint64_t revision, absl::Duration wait,
                 Format format, std::ostream& out, std::ostream& err) {
  const absl::Time deadline = absl::Now() + wait;
  std::set<std::string> awaited;  // connected at the first look
  bool first = true;
  while (true) {
    warden::v1::GetFleetStatusResponse response;
    const grpc::Status status = GetFleet(remote, "", &response);
    if (!status.ok()) return remote.Failed(status, out, err);
    std::vector<std::string> lagging, refused;
    json waited = json::object();
    for (const auto& p : response.proxies()) {
      if (first && p.connected()) awaited.insert(p.proxy_id());
      if (awaited.count(p.proxy_id()) == 0) continue;
      waited[p.proxy_id()] = p.running_revision();
      if (p.running_revision() >= revision) continue;
      if (p.nacked_revision() >= revision) {
        refused.push_back(absl::StrCat(TerminalSafe(p.proxy_id()),
                                       " refused revision ",
                                       p.nacked_revision(), ": ",
                                       TerminalSafe(p.last_error())));
      } else {
        lagging.push_back(absl::StrCat(
            TerminalSafe(p.proxy_id()), " runs ", p.running_revision(),
            " (sent ", p.sent_revision(), p.connected() ? "" : ", disconnected",
            ")"));
      }
    }
    first = false;
    if (!refused.empty()) {
      for (const auto& r : refused) err << r << "\n";
      return kExitFailed;
    }
    if (lagging.empty()) {
      if (format == Format::kJson) {
        out << json({{"revision", revision}, {"waited", waited}}).dump(2)
            << "\n";
      } else {
        out << awaited.size() << (awaited.size() == 1 ? " proxy runs"
                                                       : " proxies run")
            << " revision " << revision << "\n";
      }
      return kExitOk;
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

}  // namespace

int RunPush(const PushOptions& options, std::ostream& out, std::ostream& err) {
  absl::Duration wait = absl::ZeroDuration();
  if (!options.wait.empty() &&
      (!absl::ParseDuration(options.wait, &wait) ||
       wait <= absl::ZeroDuration())) {
    return UsageError(absl::StrCat("--wait ", options.wait,
                                   " is not a positive duration (e.g. 30s)"),
                      err);
  }
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  auto files = policy::lang::ReadSources(options.paths);
  if (!files.ok()) return UsageError(files.status().message(), err);
  warden::v1::PushPolicyRequest request;
  for (const SourceFile& f : *files) {
    auto* s = request.add_sources();
    s->set_name(f.name);
    s->set_text(f.text);
  }
  request.set_message(options.message);
  request.set_dry_run(options.dry_run);
  request.set_skip_tests(options.skip_tests);
  warden::v1::PushPolicyResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      remote.Policy()->PushPolicy(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  const bool accepted = response.diagnostics().empty();
  if (options.format == Format::kJson) {
    out << json({{"accepted", accepted},
                 {"dry_run", options.dry_run},
                 {"unchanged", response.unchanged()},
                 {"revision", response.revision()},
                 {"digest", response.digest()},
                 {"diagnostics", DiagnosticsJson(response.diagnostics())}})
               .dump(2)
        << "\n";
  } else if (!accepted) {
    for (const auto& d : response.diagnostics()) {
      err << TerminalSafe(Diagnostic{d.file(), d.line(), d.column(),
                                     d.message(), d.hint()}
                              .ToString())
          << "\n";
    }
    const int n = response.diagnostics_size();
    err << "rejected: " << n << (n == 1 ? " problem" : " problems") << "\n";
  } else if (options.dry_run) {
    out << "dry run: valid, digest " << TerminalSafe(response.digest()) << "\n";
  } else if (response.unchanged()) {
    out << "unchanged at revision " << response.revision() << "\n";
  } else {
    out << "revision " << response.revision() << " (digest "
        << TerminalSafe(response.digest()) << ")\n";
  }
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
  auto stub = remote.Policy();
  std::vector<warden::v1::BundleSummary> bundles;
  uint64_t before = 0;
  do {
    warden::v1::ListHistoryRequest request;
    request.set_page_size(options.limit - static_cast<int>(bundles.size()));
    request.set_before_revision(before);
    warden::v1::ListHistoryResponse response;
    grpc::ClientContext context;
    remote.Prepare(&context);
    const grpc::Status status = stub->ListHistory(&context, request, &response);
    if (!status.ok()) return remote.Failed(status, out, err);
    for (const auto& b : response.bundles()) {
      if (static_cast<int>(bundles.size()) < options.limit) bundles.push_back(b);
    }
    before = response.next_before_revision();
  } while (before != 0 && static_cast<int>(bundles.size()) < options.limit);

  if (options.format == Format::kJson) {
    json list = json::array();
    for (const auto& b : bundles) {
      list.push_back({{"revision", b.revision()},
                      {"parent_revision", b.parent_revision()},
                      {"digest", b.digest()},
                      {"created_by", b.created_by()},
                      {"created_at", TimeJson(b.created_at())},
                      {"message", b.message()},
                      {"rollback_of", b.rollback_of()},
                      {"sources", b.source_names()}});
    }
    out << json({{"revisions", std::move(list)}}).dump(2) << "\n";
    return kExitOk;
  }
  if (bundles.empty()) {
    out << "no revision yet\n";
    return kExitOk;
  }
  out << absl::StrFormat("%-8s %-20s %-16s %-12s %s\n", "REVISION", "CREATED",
                         "BY", "DIGEST", "MESSAGE");
  for (const auto& b : bundles) {
    std::string message = b.message();
    if (b.rollback_of() != 0) {
      message = absl::StrCat("rollback of ", b.rollback_of(),
                             message.empty() ? "" : ": ", message);
    }
    out << absl::StrFormat(
        "%-8d %-20s %-16s %-12s %s\n", b.revision(), TimeText(b.created_at()),
        TerminalSafe(b.created_by()), TerminalSafe(b.digest().substr(0, 12)),
        TerminalSafe(message));
  }
  return kExitOk;
}

int RunRollback(const RollbackOptions& options, std::ostream& out,
                std::ostream& err) {
  if (options.revision == 0) {
    return UsageError("name the revision to roll back to (see `policy history`)",
                      err);
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
      remote.Policy()->Rollback(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (options.format == Format::kJson) {
    out << json({{"revision", response.revision()},
                 {"digest", response.digest()},
                 {"rollback_of", options.revision}})
               .dump(2)
        << "\n";
  } else {
    out << "revision " << response.revision() << " (digest "
        << TerminalSafe(response.digest()) << "), rollback of "
        << options.revision << "\n";
  }
  return kExitOk;
}

int RunStatus(const StatusOptions& options, std::ostream& out,
              std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::GetFleetStatusResponse response;
  const grpc::Status status = GetFleet(remote, options.environment, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (options.format == Format::kJson) {
    json proxies = json::array();
    for (const auto& p : response.proxies()) {
      proxies.push_back({{"proxy_id", p.proxy_id()},
                         {"environment", p.environment()},
                         {"running_revision", p.running_revision()},
                         {"sent_revision", p.sent_revision()},
                         {"nacked_revision", p.nacked_revision()},
                         {"last_error", p.last_error()},
                         {"connected", p.connected()},
                         {"last_seen", TimeJson(p.last_seen())}});
    }
    out << json({{"current_revision", response.current_revision()},
                 {"proxies", std::move(proxies)}})
               .dump(2)
        << "\n";
    return kExitOk;
  }
  out << "current revision: " << response.current_revision() << "\n";
  if (response.proxies().empty()) {
    out << "no proxies connected\n";
    return kExitOk;
  }
  out << absl::StrFormat("%-24s %-12s %-8s %-8s %-9s %-20s %s\n", "PROXY",
                         "ENVIRONMENT", "RUNNING", "SENT", "CONNECTED",
                         "LAST SEEN", "LAST ERROR");
  for (const auto& p : response.proxies()) {
    std::string error = p.last_error();
    if (p.nacked_revision() != 0) {
      error = absl::StrCat("NACK ", p.nacked_revision(), ": ", error);
    }
    out << absl::StrFormat("%-24s %-12s %-8d %-8d %-9s %-20s %s\n",
                           TerminalSafe(p.proxy_id()),
                           TerminalSafe(p.environment()), p.running_revision(),
                           p.sent_revision(), p.connected() ? "yes" : "no",
                           TimeText(p.last_seen()), TerminalSafe(error));
  }
  return kExitOk;
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
      json list = json::array();
      for (const auto& d : diags) {
        list.push_back({{"file", d.file},
                        {"line", d.line},
                        {"column", d.column},
                        {"message", d.message},
                        {"hint", d.hint}});
      }
      out << json({{"valid", false}, {"diagnostics", std::move(list)}}).dump(2)
          << "\n";
    } else {
      for (const auto& d : diags) err << d.ToString() << "\n";
      if (diags.empty()) err << "invalid: " << local.status().message() << "\n";
    }
    return kExitFailed;
  }

  warden::v1::GetBundleResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      remote.Policy()->GetBundle(&context, warden::v1::GetBundleRequest(),
                                 &response);
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
  if (options.format == Format::kJson) {
    json list = json::array();
    for (const auto& c : changes) {
      json j = {{"op", std::string(1, c.op)}, {"policy", c.policy}};
      if (!c.rule.empty()) j["rule"] = c.rule;
      if (!c.what.empty()) j["what"] = c.what;
      list.push_back(std::move(j));
    }
    out << json({{"revision", revision},
                 {"local_digest", local->digest()},
                 {"server_digest", theirs.digest()},
                 {"changes", std::move(list)}})
               .dump(2)
        << "\n";
  } else {
    for (const auto& c : changes) out << TerminalSafe(ChangeText(c)) << "\n";
    if (changes.empty()) {
      out << "no changes against revision " << revision << "\n";
    } else {
      out << changes.size() << (changes.size() == 1 ? " change" : " changes")
          << " against revision " << revision << "\n";
    }
  }
  return changes.empty() ? kExitOk : kExitDifferences;
}

int RunTokensCreate(const TokenCreateOptions& options, std::ostream& out,
                    std::ostream& err) {
  warden::v1::CreateTokenRequest request;
  if (options.name.empty()) return UsageError("a token needs a NAME", err);
  request.set_name(options.name);
  if (options.scopes.empty()) {
    return UsageError("give at least one --scope", err);
  }
  for (const std::string& name : options.scopes) {
    auto* found = std::find_if(std::begin(kScopes), std::end(kScopes),
                               [&](const auto& s) { return name == s.name; });
    if (found == std::end(kScopes)) {
      return UsageError(
          absl::StrCat("unknown scope '", name,
                       "'; scopes: policy:write, policy:read, audit:read, "
                       "approvals:decide, admin, proxy:enroll, db:connect, scim"),
          err);
    }
    request.add_scopes(found->scope);
  }
  const bool service =
      request.scopes_size() == 1 &&
      request.scopes(0) == warden::v1::TOKEN_SCOPE_DATABASE_CONNECT;
  if (service) {
    for (const auto& e : options.environments) request.add_environments(e);
    for (const auto& d : options.databases) request.add_databases(d);
    for (const auto& g : options.groups) request.add_groups(g);
    request.set_kind(options.kind.empty() ? "agent" : options.kind);
  } else {
    if (!options.kind.empty() || !options.databases.empty() ||
        !options.groups.empty()) {
      return UsageError(
          "--kind, --database and --group are for --scope db:connect", err);
    }
    // proxy:enroll: the first --environment is the proxy's own (its
    // certificate and audit stream); the others are the environments its
    // other listeners serve.
    if (!options.environments.empty()) {
      request.set_environment(options.environments[0]);
      for (size_t i = 1; i < options.environments.size(); ++i) {
        request.add_environments(options.environments[i]);
      }
    }
  }
  request.set_proxy_id(options.proxy_id);
  absl::Duration ttl;
  if (!absl::ParseDuration(options.ttl, &ttl) || ttl < absl::ZeroDuration()) {
    return UsageError(absl::StrCat("--ttl '", options.ttl,
                                   "' is not a duration (e.g. 720h; 0: never "
                                   "expires)"),
                      err);
  }
  if (ttl > absl::ZeroDuration()) {
    SetDuration(ttl, request.mutable_ttl());
  }
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::CreateTokenResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      remote.Tokens()->CreateToken(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (options.format == Format::kJson) {
    out << json({{"token", response.token()},
                 {"info", TokenJson(response.info(), absl::Now())}})
               .dump(2)
        << "\n";
    return kExitOk;
  }
  out << response.token() << "\n";
  std::vector<std::string> scopes;
  for (int s : response.info().scopes()) scopes.push_back(ScopeName(s));
  const std::string expires = TimeText(response.info().expires_at());
  err << "created token " << TerminalSafe(response.info().id()) << " ("
      << TerminalSafe(response.info().name()) << ", "
      << absl::StrJoin(scopes, " ")
      << (expires.empty() ? ", never expires" : ", expires " + expires)
      << (response.info().single_use() ? ", works once" : "")
      << "); the token above is shown only once\n";
  return kExitOk;
}

int RunTokensList(const TokenListOptions& options, std::ostream& out,
                  std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::ListTokensRequest request;
  request.set_include_inactive(options.all);
  warden::v1::ListTokensResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      remote.Tokens()->ListTokens(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  const absl::Time now = absl::Now();
  if (options.format == Format::kJson) {
    json list = json::array();
    for (const auto& t : response.tokens()) list.push_back(TokenJson(t, now));
    out << json({{"tokens", std::move(list)}}).dump(2) << "\n";
    return kExitOk;
  }
  out << absl::StrFormat("%-22s %-16s %-32s %-20s %-20s %s\n", "ID", "NAME",
                         "SCOPES", "CREATED", "EXPIRES", "STATE");
  for (const auto& t : response.tokens()) {
    const json j = TokenJson(t, now);
    std::vector<std::string> scopes;
    for (int s : t.scopes()) scopes.push_back(ScopeName(s));
    std::string scope_text = absl::StrJoin(scopes, ",");
    if (!t.kind().empty()) {  // a service token: what it may reach
      absl::StrAppend(&scope_text, " (", t.kind(), ", ",
                      absl::StrJoin(t.environments(), ","),
                      t.databases().empty()
                          ? ""
                          : "/" + absl::StrJoin(t.databases(), ","),
                      ")");
    }
    const std::string expires = TimeText(t.expires_at());
    out << absl::StrFormat("%-22s %-16s %-32s %-20s %-20s %s\n",
                           TerminalSafe(t.id()), TerminalSafe(t.name()),
                           TerminalSafe(scope_text), TimeText(t.created_at()),
                           expires.empty() ? "never" : expires,
                           j["state"].get<std::string>());
  }
  return kExitOk;
}

int RunTokensRevoke(const TokenRevokeOptions& options, std::ostream& out,
                    std::ostream& err) {
  if (options.id.empty()) return UsageError("name the token ID to revoke", err);
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::RevokeTokenRequest request;
  request.set_id(options.id);
  warden::v1::RevokeTokenResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      remote.Tokens()->RevokeToken(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (options.format == Format::kJson) {
    out << TokenJson(response.info(), absl::Now()).dump(2) << "\n";
  } else {
    out << "revoked " << TerminalSafe(response.info().id()) << " ("
        << TerminalSafe(response.info().name()) << ")\n";
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// wardenctl identities

namespace {

json IdentityJson(const warden::v1::DirectoryIdentity& i) {
  return json{{"id", i.id()},
              {"user_name", i.user_name()},
              {"active", i.active()},
              {"groups", std::vector<std::string>(i.groups().begin(),
                                                  i.groups().end())},
              {"emails", std::vector<std::string>(i.emails().begin(),
                                                  i.emails().end())},
              {"external_id", i.external_id()},
              {"modified_at", TimeText(i.modified_at())}};
}

}  // namespace

int RunIdentitiesList(const IdentitiesListOptions& options, std::ostream& out,
                      std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::ListIdentitiesRequest request;
  request.set_user_name(options.user);
  warden::v1::ListIdentitiesResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      remote.Directory()->ListIdentities(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (options.format == Format::kJson) {
    json list = json::array();
    for (const auto& i : response.identities()) list.push_back(IdentityJson(i));
    out << json({{"identities", std::move(list)}}).dump(2) << "\n";
    return kExitOk;
  }
  out << absl::StrFormat("%-32s %-9s %-20s %s\n", "USER", "STATE", "MODIFIED",
                         "GROUPS");
  for (const auto& i : response.identities()) {
    out << absl::StrFormat("%-32s %-9s %-20s %s\n", TerminalSafe(i.user_name()),
                           i.active() ? "active" : "inactive",
                           TimeText(i.modified_at()),
                           TerminalSafe(absl::StrJoin(i.groups(), ",")));
  }
  return kExitOk;
}

int RunIdentitiesSetActive(const IdentitiesSetActiveOptions& options,
                           std::ostream& out, std::ostream& err) {
  if (options.user.empty()) return UsageError("name the user", err);
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::SetIdentityActiveRequest request;
  request.set_user_name(options.user);
  request.set_active(options.active);
  request.set_reason(options.reason);
  warden::v1::SetIdentityActiveResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      remote.Directory()->SetIdentityActive(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (options.format == Format::kJson) {
    json j = IdentityJson(response.identity());
    j["created"] = response.created();
    j["refused"] = response.refused();
    if (!response.note().empty()) j["note"] = response.note();
    out << j.dump(2) << "\n";
    return kExitOk;
  }
  if (options.active) {
    out << (response.refused() ? "lifted the admin's hold on "
                               : "activated ")
        << TerminalSafe(response.identity().user_name());
  } else {
    out << "deactivated " << TerminalSafe(response.identity().user_name())
        << (response.created() ? " (not in the directory before)" : "")
        << "; proxies refuse them and close their sessions with the next "
           "revision";
  }
  if (!response.note().empty()) out << " (" << TerminalSafe(response.note()) << ")";
  out << "\n";
  return kExitOk;
}

// ---------------------------------------------------------------------------
// wardenctl proxies

namespace {

json ProxyJson(const warden::v1::EnrolledProxy& p) {
  return {{"environment", p.environment()},
          {"proxy_id", p.proxy_id()},
          {"certificate_serial", p.certificate_serial()},
          {"enrolled_at", TimeJson(p.enrolled_at())},
          {"enrolled_by", p.enrolled_by()},
          {"renewed_at", TimeJson(p.renewed_at())},
          {"renewals", p.renewals()},
          {"revoked", p.revoked()},
          {"revoked_at", TimeJson(p.revoked_at())},
          {"revoked_by", p.revoked_by()},
          {"revoke_reason", p.revoke_reason()}};
}

}  // namespace

int RunProxiesList(const ProxiesListOptions& options, std::ostream& out,
                   std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::ListProxiesResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      warden::v1::ProxyEnrollment::NewStub(remote.channel())
          ->ListProxies(&context, {}, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (options.format == Format::kJson) {
    json list = json::array();
    for (const auto& p : response.proxies()) list.push_back(ProxyJson(p));
    out << json({{"proxies", std::move(list)}}).dump(2) << "\n";
    return kExitOk;
  }
  out << absl::StrFormat("%-32s %-8s %-34s %-20s %s\n", "PROXY", "STATE",
                         "CERTIFICATE", "ENROLLED", "BY");
  for (const auto& p : response.proxies()) {
    out << absl::StrFormat(
        "%-32s %-8s %-34s %-20s %s\n",
        TerminalSafe(absl::StrCat(p.environment(), "/", p.proxy_id())),
        p.revoked() ? "revoked" : "active",
        TerminalSafe(p.certificate_serial()), TimeText(p.enrolled_at()),
        TerminalSafe(p.revoked() ? absl::StrCat(p.enrolled_by(),
                                                "; revoked by ", p.revoked_by(),
                                                ": ", p.revoke_reason())
                                 : p.enrolled_by()));
  }
  return kExitOk;
}

int RunProxiesRevoke(const ProxiesRevokeOptions& options, std::ostream& out,
                     std::ostream& err) {
  const size_t slash = options.proxy.find('/');
  if (slash == std::string::npos || slash == 0 ||
      slash + 1 == options.proxy.size()) {
    return UsageError("name the proxy as ENVIRONMENT/ID (wardenctl proxies list)",
                      err);
  }
  if (options.reason.empty()) {
    return UsageError("--reason is required (it is recorded in the audit log)",
                      err);
  }
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::RevokeProxyRequest request;
  request.set_environment(options.proxy.substr(0, slash));
  request.set_proxy_id(options.proxy.substr(slash + 1));
  request.set_reason(options.reason);
  warden::v1::RevokeProxyResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      warden::v1::ProxyEnrollment::NewStub(remote.channel())
          ->RevokeProxy(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (options.format == Format::kJson) {
    out << ProxyJson(response.proxy()).dump(2) << "\n";
    return kExitOk;
  }
  out << "revoked " << TerminalSafe(options.proxy)
      << "; its next call to warden-control is refused\n";
  return kExitOk;
}

// ---------------------------------------------------------------------------
// wardenctl audit

namespace {

// A verifier key given as text ("name+hash+key") or as a file holding it.
absl::StatusOr<std::string> LoadVerifierKey(const std::string& key) {
  if (key.empty()) {
    return absl::InvalidArgumentError(
        "--key is required: the audit log's verifier key (warden-control's "
        "DATA_DIR/audit.vkey, or its text)");
  }
  auto text = ReadFile(key);
  std::string value = text.ok() ? *text : key;
  return std::string(absl::StripAsciiWhitespace(value));
}

std::string EventSummary(const warden::v1::AuditLeaf& leaf) {
  const warden::v1::AuditEvent& e = leaf.event();
  std::string who = e.identity().user();
  if (who.empty() && e.has_authentication() &&
      !e.authentication().claimed_user().empty()) {
    // Not verified: a failed login names whom it claimed to be, quoted,
    // so that a claimed "x: authentication ok (oidc:corp)" padded with
    // spaces cannot read as a successful login (red team).
    who = absl::StrCat("(claimed) ",
                       QuoteUnverifiedName(e.authentication().claimed_user()));
  }
  if (who.empty()) who = "-";
  // What ingest had to change says so first: a proxy's claim to an
  // administrator's action or to another environment reads as a claim.
  std::string repaired;
  if (e.has_repairs()) {
    const warden::v1::EventRepairs& r = e.repairs();
    std::vector<std::string> notes;
    if (r.unauthorized_kind() != warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED) {
      notes.push_back(absl::StrCat(
          "claimed kind ",
          warden::v1::AuditEventKind_Name(r.unauthorized_kind()).substr(17)));
    }
    if (r.unauthorized_body()) notes.push_back("sent an admin action");
    if (!r.unauthorized_environment().empty()) {
      notes.push_back(
          absl::StrCat("claimed environment ", r.unauthorized_environment()));
    }
    if (!r.invalid_utf8().empty()) {
      notes.push_back(absl::StrCat("invalid UTF-8 in ",
                                   absl::StrJoin(r.invalid_utf8(), ",")));
    }
    if (!r.truncated().empty()) {
      notes.push_back(
          absl::StrCat("cut: ", absl::StrJoin(r.truncated(), ",")));
    }
    if (r.unknown_field_bytes() > 0) {
      notes.push_back(
          absl::StrCat(r.unknown_field_bytes(), " bytes of unknown fields"));
    }
    if (!r.undecodable().empty() && !r.unauthorized_body()) {
      notes.push_back("undecodable");
    }
    if (!notes.empty()) {
      repaired = absl::StrCat("[REPAIRED: ", absl::StrJoin(notes, "; "), "] ");
    }
  }
  std::string what;
  switch (e.body_case()) {
    case warden::v1::AuditEvent::kSessionStart:
      what = absl::StrCat("session start db=", e.session_start().database(),
                          " from ", e.session_start().client_address());
      break;
    case warden::v1::AuditEvent::kSessionEnd:
      what = absl::StrCat(
          "session end: ",
          warden::v1::SessionEndReason_Name(e.session_end().reason()),
          e.session_end().detail().empty() ? ""
                                           : " " + e.session_end().detail());
      break;
    case warden::v1::AuditEvent::kAuthentication:
      what = absl::StrCat(
          "authentication ", e.authentication().success() ? "ok" : "FAILED",
          " (", e.authentication().method(), ")",
          e.authentication().reason().empty()
              ? ""
              : ": " + e.authentication().reason());
      break;
    case warden::v1::AuditEvent::kStatement: {
      const auto& st = e.statement();
      if (st.phase() == warden::v1::STATEMENT_PHASE_RESULT) {
        const absl::Duration took = FromDuration(st.duration());
        what = absl::StrCat(
            "result of #", st.intent_sequence(), ": ",
            st.sqlstate().empty() ? "no answer" : st.sqlstate(), ", ",
            st.rows(), st.rows() == 1 ? " row" : " rows", ", ",
            absl::FormatDuration(absl::Trunc(took, absl::Microseconds(1))),
            st.reason().empty() ? "" : " (" + st.reason() + ")");
        break;
      }
      // The exact bytes when the text had to be made valid UTF-8: printed
      // with the invalid ones as \xNN (TerminalSafe), not as U+FFFD.
      std::string text = !st.text_bytes().empty()       ? st.text_bytes()
                         : !st.text().empty()             ? st.text()
                         : !st.normalized_text().empty() ? st.normalized_text()
                                                         : absl::StrJoin(
                                                               st.command_tags(),
                                                               ";");
      what = absl::StrCat(
          warden::v1::PolicyAction_Name(st.decision()).substr(14), " ",
          st.rule().empty() ? "" : "[" + st.rule() + "] ", text,
          st.sqlstate().empty() ? "" : " -> " + st.sqlstate());
      break;
    }
    case warden::v1::AuditEvent::kAdmin:
      // A refused action says so first, before any text a caller chose (a
      // claimed name in the target; red team: padded to push FAILED off
      // the screen, it read as "certificate issued").
      what = absl::StrCat(e.admin().action(),
                          e.admin().success() ? " " : " FAILED ",
                          e.admin().target(),
                          e.admin().detail().empty()
                              ? ""
                              : ": " + e.admin().detail());
      break;
    default:
      what = warden::v1::AuditEventKind_Name(e.kind());
  }
  return absl::StrCat(leaf.source(), " #", e.sequence(), " ", who, ": ",
                      repaired, what);
}

std::string TimeOf(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                          FromTimestamp(ts),
                          absl::UTCTimeZone());
}

// Prints one entry: a text line, or the AuditLeaf as one JSON line.
void PrintEntry(const warden::v1::AuditEntry& entry, Format format,
                std::ostream& out) {
  auto parts = audit::SplitLeaf(entry.leaf());
  warden::v1::AuditLeaf leaf;
  if (!parts.ok() || !audit::ParseAuditLeaf(parts->second, &leaf)) {
    out << "#" << entry.index() << " (not an audit leaf)\n";
    return;
  }
  if (format == Format::kJson) {
    std::string text;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(leaf, &text, options);
    out << "{\"index\": " << entry.index() << ", \"leaf\": " << text << "}\n";
    return;
  }
  // One line per event whatever its fields hold: a newline a client put in
  // a user name or a token's issuer must not print as a second event.
  out << "#" << entry.index() << " " << TimeOf(leaf.received_at()) << " "
      << TerminalSafe(EventSummary(leaf)) << "\n";
}

}  // namespace

int RunAuditCheckpoint(const AuditCheckpointOptions& options,
                       std::ostream& out, std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::GetCheckpointResponse response;
  const grpc::Status status = remote.Checkpoint(&response);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (!options.out_file.empty()) {
    if (auto s = WriteFileDurably(options.out_file, response.checkpoint());
        !s.ok()) {
      return UsageError(s.message(), err);
    }
  }
  if (options.format == Format::kJson) {
    out << json({{"checkpoint", response.checkpoint()},
                 {"tree_size", response.tree_size()},
                 {"root_hash", crypto::HexEncode(response.root_hash())},
                 {"verifier_key", response.verifier_key()}})
               .dump(2)
        << "\n";
  } else {
    out << response.checkpoint();
  }
  return kExitOk;
}

int RunAuditExport(const AuditExportOptions& options, std::ostream& out,
                   std::ostream& err) {
  if (options.out_file.empty()) return UsageError("--out FILE is required", err);
  uint64_t to = options.to;
  if (!options.checkpoint_file.empty()) {
    if (options.from != 0 || options.to != 0) {
      return UsageError("--checkpoint exports from 0 to its size: not with "
                        "--from or --to",
                        err);
    }
    // Only the size is needed here; verify checks the signature.
    auto note = ReadFile(options.checkpoint_file);
    if (!note.ok()) {
      return UsageError(
          absl::StrCat("--checkpoint: ", note.status().message()), err);
    }
    const size_t body_end = note->find("\n\n");
    auto checkpoint = audit::ParseCheckpointBody(
        body_end == std::string::npos ? absl::string_view(*note)
                                      : absl::string_view(*note).substr(
                                            0, body_end + 1));
    if (!checkpoint.ok()) {
      return UsageError(absl::StrCat("--checkpoint: ",
                                     checkpoint.status().message()),
                        err);
    }
    if (checkpoint->size == 0) {
      return UsageError("--checkpoint signs an empty log: nothing to export",
                        err);
    }
    to = checkpoint->size;
  }
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  std::string text;
  std::ostringstream decoded;
  uint64_t next = options.from;
  uint64_t count = 0;
  for (;;) {
    if (to != 0 && next >= to) break;
    warden::v1::GetEntriesResponse response;
    const grpc::Status status =
        remote.Entries(next, to == 0 ? UINT64_MAX : to, &response);
    if (!status.ok()) return remote.Failed(status, out, err);
    if (response.entries_size() == 0) break;
    for (const auto& e : response.entries()) {
      absl::StrAppend(&text, "{\"index\": ", e.index(), ", \"leaf\": \"",
                      crypto::Base64Encode(e.leaf()), "\"}\n");
      if (!options.decoded_file.empty()) PrintEntry(e, Format::kJson, decoded);
      next = e.index() + 1;
      ++count;
    }
  }
  if (to != 0 && next < to && !options.checkpoint_file.empty()) {
    err << "error: the log has " << next << " entries but the checkpoint "
        << "signed " << to << ": is it this log's?\n";
    return kExitFailed;
  }
  if (auto s = WriteFileDurably(options.out_file, text); !s.ok()) {
    return UsageError(s.message(), err);
  }
  if (!options.decoded_file.empty()) {
    if (auto s = WriteFileDurably(options.decoded_file, decoded.str());
        !s.ok()) {
      return UsageError(s.message(), err);
    }
    err << "decoded copy in " << options.decoded_file
        << " (for reading; verify reads " << options.out_file << ")\n";
  }
  err << "exported " << count << " entries to " << options.out_file << "\n";
  return kExitOk;
}

int RunAuditVerify(const AuditVerifyOptions& options, std::ostream& out,
                   std::ostream& err) {
  auto key = LoadVerifierKey(options.key);
  if (!key.ok()) return UsageError(key.status().message(), err);
  auto note = ReadFile(options.checkpoint_file);
  if (!note.ok()) {
    return UsageError(absl::StrCat("--checkpoint: ", note.status().message()),
                      err);
  }
  auto log = ReadFile(options.log_file);
  if (!log.ok()) {
    return UsageError(absl::StrCat("--log: ", log.status().message()), err);
  }
  std::vector<audit::ExportedEntry> entries;
  size_t line_no = 0;
  for (absl::string_view line : absl::StrSplit(*log, '\n')) {
    ++line_no;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    // A NUL ends the text for some readers and not for others (the JSON
    // parser stopped there; red team: a second, forged entry after it
    // passed): what some reader sees and verify did not check.
    if (line.find('\0') != absl::string_view::npos) {
      return UsageError(absl::StrCat(options.log_file, ":", line_no,
                                     ": holds a NUL byte; verify refuses "
                                     "content it cannot check"),
                        err);
    }
    // Strict: a line is exactly what `audit export` writes, {"index": N,
    // "leaf": "BASE64"}. Anything else in a verified file (a decoded copy
    // of the event, a second "leaf" that another JSON reader would take)
    // is content verify could not check, so it is refused, not ignored.
    std::string bad_member;
    std::set<std::string> seen;
    auto strict = [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key &&
          bad_member.empty()) {
        const std::string name = parsed.get<std::string>();
        if (name != "index" && name != "leaf") {
          bad_member = absl::StrCat("member \"", TerminalSafe(name),
                                    "\" is not part of an exported entry");
        } else if (!seen.insert(name).second) {
          // nlohmann keeps the last value, another reader the first.
          bad_member = absl::StrCat("member \"", name, "\" appears twice");
        }
      }
      return true;
    };
    json j = json::parse(line.begin(), line.end(), strict, false);
    if (!bad_member.empty()) {
      return UsageError(absl::StrCat(options.log_file, ":", line_no, ": ",
                                     bad_member, "; verify refuses content "
                                     "it cannot check"),
                        err);
    }
    if (j.is_discarded() || !j.is_object() || j.size() != 2 ||
        !j.contains("index") || !j["index"].is_number_unsigned() ||
        !j.contains("leaf") || !j["leaf"].is_string()) {
      return UsageError(absl::StrCat(options.log_file, ":", line_no,
                                     ": not an exported entry"),
                        err);
    }
    auto leaf = crypto::Base64Decode(j["leaf"].get<std::string>());
    if (!leaf.ok()) {
      return UsageError(absl::StrCat(options.log_file, ":", line_no,
                                     ": leaf is not base64"),
                        err);
    }
    entries.push_back({j["index"].get<uint64_t>(), *std::move(leaf)});
  }
  const audit::VerifyReport report = audit::VerifyExport(
      entries, *note, *key, options.allow_uncovered);
  if (options.format == Format::kJson) {
    out << json({{"ok", report.ok},
                 {"checkpoint_size", report.checkpoint_size},
                 {"entries", report.entries},
                 {"first_bad_index", report.first_bad_index},
                 {"message", report.message}})
               .dump(2)
        << "\n";
  } else {
    (report.ok ? out : err) << (report.ok ? "verified: " : "NOT VERIFIED: ")
                            << TerminalSafe(report.message) << "\n";
  }
  return report.ok ? kExitOk : kExitFailed;
}

int RunAuditTail(const AuditTailOptions& options, std::ostream& out,
                 std::ostream& err) {
  warden::v1::AuditFilter filter;
  for (const auto& u : options.users) filter.add_users(u);
  for (const auto& e : options.environments) filter.add_environments(e);
  for (const auto& d : options.decisions) {
    warden::v1::PolicyAction action;
    if (!warden::v1::PolicyAction_Parse(
            "POLICY_ACTION_" + absl::AsciiStrToUpper(d), &action) ||
        action == warden::v1::POLICY_ACTION_UNSPECIFIED) {
      return UsageError(absl::StrCat("--decision '", d,
                                     "': allow, deny or require_approval"),
                        err);
    }
    filter.add_decisions(action);
  }
  for (const auto& k : options.kinds) {
    warden::v1::AuditEventKind kind;
    if (!warden::v1::AuditEventKind_Parse(
            "AUDIT_EVENT_KIND_" + absl::AsciiStrToUpper(k), &kind) ||
        kind == warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED) {
      return UsageError(absl::StrCat("--kind '", k,
                                     "': statement, session_start, "
                                     "session_end, authentication or admin"),
                        err);
    }
    filter.add_kinds(kind);
  }
  const warden::v1::AuditFormat format =
      options.ocsf ? warden::v1::AUDIT_FORMAT_OCSF_JSON
                   : warden::v1::AUDIT_FORMAT_NATIVE;
  const auto print = [&](const warden::v1::ExportedEvent& e) {
    if (options.ocsf) {
      out << e.ocsf_json() << "\n";
      return;
    }
    warden::v1::AuditEntry entry;
    entry.set_index(e.index());
    entry.set_leaf(e.leaf());
    PrintEntry(entry, options.format, out);
  };
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  // One page of matches of `filter` from `cursor` (scan_limit 0: the
  // server's default).
  const auto list_page = [&](uint64_t cursor, uint64_t page_size,
                             uint64_t scan_limit,
                             warden::v1::ListEventsResponse* response) {
    warden::v1::ListEventsRequest request;
    request.set_cursor(cursor);
    *request.mutable_filter() = filter;
    request.set_format(format);
    request.set_page_size(static_cast<int32_t>(page_size));
    request.set_scan_limit(scan_limit);
    grpc::ClientContext context;
    remote.Prepare(&context);
    return warden::v1::AuditExport::NewStub(remote.channel())
        ->ListEvents(&context, request, response);
  };
  // The matches of `filter` in [from, to), in order, at most `keep` of the
  // last ones, or a failed status.
  const auto matches_between =
      [&](uint64_t from, uint64_t to, uint64_t keep,
          std::deque<warden::v1::ExportedEvent>* got) -> grpc::Status {
    uint64_t cursor = from;
    while (cursor < to) {
      warden::v1::ListEventsResponse response;
      const grpc::Status status =
          list_page(cursor, 1000, to - cursor, &response);
      if (!status.ok()) return status;
      for (const auto& e : response.events()) {
        if (e.index() >= to) break;
        got->push_back(e);
        if (got->size() > keep) got->pop_front();
      }
      if (response.next_cursor() <= cursor) break;
      cursor = response.next_cursor();
    }
    return grpc::Status::OK;
  };
  const bool filtered = filter.users_size() > 0 ||
                        filter.environments_size() > 0 ||
                        filter.decisions_size() > 0 || filter.kinds_size() > 0;
  uint64_t next = 0;
  if (options.from >= 0) {
    next = static_cast<uint64_t>(options.from);
  } else if (!options.search) {
    warden::v1::GetCheckpointResponse cp;
    const grpc::Status status = remote.Checkpoint(&cp);
    if (!status.ok()) return remote.Failed(status, out, err);
    next = cp.tree_size() > options.limit ? cp.tree_size() - options.limit : 0;
    if (filtered) {
      // The last --limit events that match, not the matches among the
      // last --limit events: read back from the end in growing windows
      // until enough are found or the log's start is reached.
      std::deque<warden::v1::ExportedEvent> found;
      uint64_t end = cp.tree_size();
      uint64_t window = std::max<uint64_t>(options.limit, 1000);
      while (found.size() < options.limit && end > 0) {
        const uint64_t start = end > window ? end - window : 0;
        std::deque<warden::v1::ExportedEvent> older;
        const grpc::Status got = matches_between(
            start, end, options.limit - found.size(), &older);
        if (!got.ok()) return remote.Failed(got, out, err);
        found.insert(found.begin(), older.begin(), older.end());
        end = start;
        window = std::min<uint64_t>(window * 2, 1u << 20);
      }
      for (const auto& e : found) print(e);
      out.flush();  // a follower sees the backlog before the first new event
      if (!options.follow) return kExitOk;
      next = cp.tree_size();  // --follow goes on from here
    }
  }
  if (options.follow) {
    warden::v1::SubscribeRequest request;
    request.set_cursor(next);
    *request.mutable_filter() = filter;
    request.set_format(format);
    grpc::ClientContext context;  // no deadline: follows until interrupted
    if (!options.connection.token.empty()) {
      context.AddMetadata("authorization", "Bearer " + options.connection.token);
    }
    auto stub = warden::v1::AuditExport::NewStub(remote.channel());
    auto reader = stub->Subscribe(&context, request);
    warden::v1::SubscribeResponse got;
    while (reader->Read(&got)) {
      if (got.has_event()) {
        print(got.event());
        out.flush();
      }
    }
    const grpc::Status status = reader->Finish();
    return status.ok() ? kExitOk : remote.Failed(status, out, err);
  }
  // One pass over the log (tail: from the last --limit entries; search: up
  // to --limit matches from --from).
  uint64_t printed = 0;
  for (;;) {
    warden::v1::ListEventsResponse response;
    const grpc::Status status = list_page(
        next, std::min<uint64_t>(1000, options.limit - printed), 0, &response);
    if (!status.ok()) return remote.Failed(status, out, err);
    for (const auto& e : response.events()) print(e);
    printed += response.events_size();
    if (response.next_cursor() == next || printed >= options.limit) break;
    next = response.next_cursor();
  }
  return kExitOk;
}

int RunAuditProof(const AuditProofOptions& options, std::ostream& out,
                  std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  // The checkpoint to prove against: a saved one, or the current one.
  std::string note;
  if (!options.checkpoint_file.empty()) {
    auto saved = ReadFile(options.checkpoint_file);
    if (!saved.ok()) return UsageError(saved.status().message(), err);
    note = *saved;
  } else {
    warden::v1::GetCheckpointResponse cp;
    const grpc::Status status = remote.Checkpoint(&cp);
    if (!status.ok()) return remote.Failed(status, out, err);
    note = cp.checkpoint();
  }
  absl::StatusOr<audit::Checkpoint> checkpoint;
  if (!options.key.empty()) {
    auto key = LoadVerifierKey(options.key);
    if (!key.ok()) return UsageError(key.status().message(), err);
    checkpoint = audit::VerifyCheckpoint(note, *key);
  } else {
    // Unsigned trust: the proof is checked against the root the server
    // sent; say so.
    const size_t blank = note.find("\n\n");
    checkpoint = audit::ParseCheckpointBody(
        note.substr(0, blank == std::string::npos ? note.size() : blank + 1));
    err << "note: no --key given, the checkpoint's signature is not "
           "checked\n";
  }
  if (!checkpoint.ok()) {
    err << "NOT VERIFIED: checkpoint: "
        << TerminalSafe(checkpoint.status().message()) << "\n";
    return kExitFailed;
  }
  warden::v1::GetEntriesResponse entries;
  grpc::Status status =
      remote.Entries(options.index, options.index + 1, &entries);
  if (!status.ok()) return remote.Failed(status, out, err);
  if (entries.entries_size() != 1) {
    err << "no entry " << options.index << "\n";
    return kExitFailed;
  }
  warden::v1::GetInclusionProofRequest request;
  request.set_index(options.index);
  request.set_tree_size(checkpoint->size);
  warden::v1::GetInclusionProofResponse proof;
  grpc::ClientContext c2;
  remote.Prepare(&c2);
  status = remote.Audit()->GetInclusionProof(&c2, request, &proof);
  if (!status.ok()) return remote.Failed(status, out, err);
  std::vector<std::string> hashes(proof.hashes().begin(), proof.hashes().end());
  const absl::Status verified = audit::VerifyInclusion(
      audit::LeafHash(entries.entries(0).leaf()), options.index,
      checkpoint->size, hashes, checkpoint->root_hash);
  if (options.format == Format::kJson) {
    json hex = json::array();
    for (const auto& h : hashes) hex.push_back(crypto::HexEncode(h));
    out << json({{"index", options.index},
                 {"tree_size", checkpoint->size},
                 {"verified", verified.ok()},
                 {"proof", std::move(hex)},
                 {"error", std::string(verified.message())}})
               .dump(2)
        << "\n";
  } else if (verified.ok()) {
    out << "entry " << options.index << " is in the log of size "
        << checkpoint->size << " (" << hashes.size() << " proof hashes)\n";
    PrintEntry(entries.entries(0), Format::kText, out);
  } else {
    err << "NOT VERIFIED: " << TerminalSafe(verified.message()) << "\n";
  }
  return verified.ok() ? kExitOk : kExitFailed;
}

}  // namespace warden::controlplane::cli
