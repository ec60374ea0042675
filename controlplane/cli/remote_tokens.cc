#include "controlplane/cli/remote_tokens.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "proto/warden/v1/control.grpc.pb.h"

namespace warden::controlplane::cli {
namespace {

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

std::unique_ptr<warden::v1::TokenService::Stub> TokenStub(
    const Remote& remote) {
  return warden::v1::TokenService::NewStub(remote.channel());
}

// A token as every tokens command shows it; "state" is active, revoked,
// used (a single-use token) or expired (at `now`).
Json TokenJson(const warden::v1::TokenInfo& t, absl::Time now) {
  Json scopes = Json::array();
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

// ---------------------------------------------------------------------------
// tokens create

// The request, or a usage error's message.
absl::StatusOr<warden::v1::CreateTokenRequest> CreateRequest(
    const TokenCreateOptions& options) {
  warden::v1::CreateTokenRequest request;
  if (options.name.empty()) {
    return absl::InvalidArgumentError("a token needs a NAME");
  }
  request.set_name(options.name);
  if (options.scopes.empty()) {
    return absl::InvalidArgumentError("give at least one --scope");
  }
  for (const std::string& name : options.scopes) {
    auto* found = std::find_if(std::begin(kScopes), std::end(kScopes),
                               [&](const auto& s) { return name == s.name; });
    if (found == std::end(kScopes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown scope '", name,
          "'; scopes: policy:write, policy:read, audit:read, "
          "approvals:decide, admin, proxy:enroll, db:connect, scim"));
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
      return absl::InvalidArgumentError(
          "--kind, --database and --group are for --scope db:connect");
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
    return absl::InvalidArgumentError(
        absl::StrCat("--ttl '", options.ttl,
                     "' is not a duration (e.g. 720h; 0: never expires)"));
  }
  if (ttl > absl::ZeroDuration()) {
    SetDuration(ttl, request.mutable_ttl());
  }
  return request;
}

// The secret alone on `out` (for scripts); what it is on `err`.
void PrintCreatedText(const Json& created, std::ostream& out,
                      std::ostream& err) {
  out << StringAt(created, "token") << "\n";
  const Json& info = created["info"];
  const std::string expires = StringAt(info, "expires_at");
  err << "created token " << TerminalSafe(StringAt(info, "id")) << " ("
      << TerminalSafe(StringAt(info, "name")) << ", "
      << absl::StrJoin(StringsAt(info, "scopes"), " ")
      << (expires.empty() ? ", never expires" : ", expires " + expires)
      << (BoolAt(info, "single_use") ? ", works once" : "")
      << "); the token above is shown only once\n";
}

// ---------------------------------------------------------------------------
// tokens list

void PrintTokensText(const Json& list, std::ostream& out) {
  out << absl::StrFormat("%-22s %-16s %-32s %-20s %-20s %s\n", "ID", "NAME",
                         "SCOPES", "CREATED", "EXPIRES", "STATE");
  for (const Json& t : list["tokens"]) {
    std::string scope_text = absl::StrJoin(StringsAt(t, "scopes"), ",");
    if (const std::string kind = StringAt(t, "kind"); !kind.empty()) {
      // a service token: what it may reach
      const std::vector<std::string> databases = StringsAt(t, "databases");
      absl::StrAppend(
          &scope_text, " (", kind, ", ",
          absl::StrJoin(StringsAt(t, "environments"), ","),
          databases.empty() ? "" : "/" + absl::StrJoin(databases, ","), ")");
    }
    const std::string expires = StringAt(t, "expires_at");
    out << absl::StrFormat(
        "%-22s %-16s %-32s %-20s %-20s %s\n", TerminalSafe(StringAt(t, "id")),
        TerminalSafe(StringAt(t, "name")), TerminalSafe(scope_text),
        StringAt(t, "created_at"), expires.empty() ? "never" : expires,
        StringAt(t, "state"));
  }
}

// ---------------------------------------------------------------------------
// tokens revoke

void PrintRevokedText(const Json& token, std::ostream& out) {
  out << "revoked " << TerminalSafe(StringAt(token, "id")) << " ("
      << TerminalSafe(StringAt(token, "name")) << ")\n";
}

}  // namespace

int RunTokensCreate(const TokenCreateOptions& options, std::ostream& out,
                    std::ostream& err) {
  auto request = CreateRequest(options);
  if (!request.ok()) return UsageError(request.status().message(), err);
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::CreateTokenResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      TokenStub(remote)->CreateToken(&context, *request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  const Json created = {{"token", response.token()},
                        {"info", TokenJson(response.info(), absl::Now())}};
  if (options.format == Format::kJson) {
    WriteJson(created, out);
  } else {
    PrintCreatedText(created, out, err);
  }
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
      TokenStub(remote)->ListTokens(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  const absl::Time now = absl::Now();
  Json tokens = Json::array();
  for (const auto& t : response.tokens()) tokens.push_back(TokenJson(t, now));
  return Report(options.format, {{"tokens", std::move(tokens)}},
                PrintTokensText, out);
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
      TokenStub(remote)->RevokeToken(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  return Report(options.format, TokenJson(response.info(), absl::Now()),
                PrintRevokedText, out);
}

}  // namespace warden::controlplane::cli
