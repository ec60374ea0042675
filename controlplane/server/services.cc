#include "controlplane/server/services.h"

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "common/names.h"
#include "common/proto_time.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/strings/str_join.h"
#include "common/x509.h"
#include "controlplane/server/audit_services.h"
#include "absl/strings/numbers.h"
#include "google/protobuf/descriptor.h"
#include "policy/lang/compile.h"
#include "policy/testing/testing.h"

namespace warden::controlplane::server {
namespace {

using warden::v1::TokenScope;

constexpr char kEnrollMethod[] = "/warden.v1.ProxyEnrollment/Enroll";

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context,
                               const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// Who the caller is, for created_by; the token's name.
std::string Caller(const warden::v1::TokenInfo& info) {
  return absl::StrCat("token:", info.name());
}

void SetTime(const google::protobuf::Timestamp& from,
             google::protobuf::Timestamp* to) {
  *to = from;
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

TokenScope RequiredScope(absl::string_view method) {
  // "/warden.v1.PolicyService/PushPolicy": the method's option in the
  // .proto says (scopes.proto); a method without one takes no token.
  if (!absl::ConsumePrefix(&method, "/")) {
    return warden::v1::TOKEN_SCOPE_UNSPECIFIED;
  }
  const google::protobuf::MethodDescriptor* m =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrReplaceAll(method, {{"/", "."}}));
  if (m == nullptr || !m->options().HasExtension(warden::v1::required_scope)) {
    return warden::v1::TOKEN_SCOPE_UNSPECIFIED;
  }
  return m->options().GetExtension(warden::v1::required_scope);
}

// The address part of gRPC's peer string ("ipv4:127.0.0.1:5000",
// "ipv6:[::1]:5000"), what failures are counted by.
std::string PeerHost(const std::string& peer) {
  absl::string_view p = peer;
  const size_t colon = p.find(':');
  if (colon != absl::string_view::npos &&
      (p.substr(0, colon) == "ipv4" || p.substr(0, colon) == "ipv6")) {
    p.remove_prefix(colon + 1);
  }
  if (absl::ConsumePrefix(&p, "[")) {
    const size_t close = p.find(']');
    return std::string(p.substr(0, close));
  }
  const size_t port = p.rfind(':');
  return std::string(port == absl::string_view::npos ? p : p.substr(0, port));
}

namespace {
std::atomic<ApiRefusals*> api_refusals{nullptr};

absl::StatusOr<warden::v1::TokenInfo> AuthorizeUnrecorded(
    const tokens::Tokens& tokens, const grpc::CallbackServerContext* context,
    TokenScope scope, std::string* actor);
}  // namespace

void SetApiRefusals(ApiRefusals* refusals) { api_refusals.store(refusals); }

absl::StatusOr<warden::v1::TokenInfo> Authorize(
    const tokens::Tokens& tokens, const grpc::CallbackServerContext* context,
    absl::string_view method) {
  std::string actor = "unauthenticated";
  auto info =
      AuthorizeUnrecorded(tokens, context, RequiredScope(method), &actor);
  if (!info.ok()) {
    if (ApiRefusals* r = api_refusals.load(); r != nullptr) {
      r->Refused(PeerHost(context->peer()), actor, method, info.status());
    }
  }
  return info;
}

namespace {
absl::StatusOr<warden::v1::TokenInfo> AuthorizeUnrecorded(
    const tokens::Tokens& tokens, const grpc::CallbackServerContext* context,
    TokenScope scope, std::string* actor) {
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "no credentials: send \"authorization: Bearer <token>\"");
  }
  const absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWith(value, kBearer)) {
    return absl::UnauthenticatedError(
        "the authorization header must be \"Bearer <token>\"");
  }
  auto info = tokens.Authenticate(value.substr(kBearer.size()), absl::Now());
  if (!info.ok()) return info.status();
  *actor = Caller(*info);
  if (scope == warden::v1::TOKEN_SCOPE_UNSPECIFIED ||
      !tokens::Tokens::HasScope(*info, scope)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "token ", info->id(), " (", info->name(), ") lacks scope ",
        warden::v1::TokenScope_Name(scope)));
  }
  return info;
}
}  // namespace

// ---------------------------------------------------------------------------
// PolicyService

std::string PolicyServiceImpl::TestBeforePush(
    const std::vector<policy::lang::SourceFile>& sources, bool skip,
    std::vector<policy::lang::Diagnostic>* diagnostics) {
  std::vector<policy::lang::Diagnostic> load;
  auto suites = policy::testing::LoadTests(sources, &load);
  if (!suites.ok()) {
    // Broken test documents reject the push like broken policies.
    diagnostics->insert(diagnostics->end(), load.begin(), load.end());
    return "policy tests invalid";
  }
  size_t cases = 0;
  for (const auto& s : *suites) cases += s.cases.size();
  if (cases == 0) return "no policy tests";
  auto bundle = policy::lang::Compile(sources);
  if (!bundle.ok()) return "policy tests not run";  // Push reports why.
  const auto results = policy::testing::RunTests(*bundle, *suites);
  size_t failed = 0;
  std::vector<policy::lang::Diagnostic> failures;
  for (const auto& r : results) {
    if (r.passed) continue;
    ++failed;
    policy::lang::Diagnostic d;
    // r.source is "file:line".
    const size_t colon = r.source.rfind(':');
    d.file = colon == std::string::npos ? r.source : r.source.substr(0, colon);
    if (colon != std::string::npos) {
      (void)absl::SimpleAtoi(r.source.substr(colon + 1), &d.line);
    }
    d.message = absl::StrCat("policy test \"", r.suite, "\" case \"", r.name,
                             "\" fails: ", absl::StrJoin(r.mismatches, "; "));
    d.hint =
        "run wardenctl policy test on these files; push --skip-tests pushes "
        "anyway (recorded in the audit trail)";
    failures.push_back(std::move(d));
  }
  if (failed == 0) return absl::StrCat(cases, " policy tests passed");
  if (skip) {
    return absl::StrCat("policy tests skipped: ", failed, " of ", cases,
                        " failing");
  }
  diagnostics->insert(diagnostics->end(), failures.begin(), failures.end());
  return absl::StrCat(failed, " of ", cases, " policy tests failed");
}

grpc::ServerUnaryReactor* PolicyServiceImpl::PushPolicy(
    grpc::CallbackServerContext* context,
    const warden::v1::PushPolicyRequest* request,
    warden::v1::PushPolicyResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.PolicyService/PushPolicy");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  std::vector<policy::lang::SourceFile> sources;
  for (const auto& s : request->sources()) {
    sources.push_back({s.name(), s.text()});
  }
  std::vector<policy::lang::Diagnostic> diagnostics;
  // The folder's own tests gate the push: what CI validated is what runs.
  auto tested = TestBeforePush(sources, request->skip_tests(), &diagnostics);
  absl::StatusOr<bundles::PushResult> pushed =
      absl::FailedPreconditionError("policy tests failed");
  if (diagnostics.empty()) {
    pushed = bundles_->Push(sources, request->message(), Caller(*who),
                            absl::Now(), request->dry_run(), &diagnostics);
  }
  if (!pushed.ok() && !diagnostics.empty()) {
    // Rejected policy: OK with every diagnostic, as the API documents.
    for (const auto& d : diagnostics) {
      auto* out = response->add_diagnostics();
      out->set_file(d.file);
      out->set_line(d.line);
      out->set_column(d.column);
      out->set_message(d.message);
      out->set_hint(d.hint);
    }
    return Done(context, grpc::Status::OK);
  }
  if (!pushed.ok()) return Done(context, ToGrpc(pushed.status()));
  response->set_revision(pushed->revision);
  response->set_digest(pushed->digest);
  response->set_unchanged(pushed->unchanged);
  if (distributor_ != nullptr && !request->dry_run() && !pushed->unchanged) {
    distributor_->Publish();
  }
  if (audit_ != nullptr && !request->dry_run() && !pushed->unchanged) {
    audit_->Record(Caller(*who), "policy.push",
                   absl::StrCat("revision ", pushed->revision),
                   absl::StrCat("digest ", pushed->digest, " (", tested,
                                "): ", request->message()));
  }
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PolicyServiceImpl::GetBundle(
    grpc::CallbackServerContext* context,
    const warden::v1::GetBundleRequest* request,
    warden::v1::GetBundleResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.PolicyService/GetBundle");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  auto record = bundles_->Get(request->revision());
  if (!record.ok()) return Done(context, ToGrpc(record.status()));
  *response->mutable_bundle() = record->signed_bundle();
  if (request->include_sources()) {
    *response->mutable_sources() = record->sources();
  }
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PolicyServiceImpl::ListHistory(
    grpc::CallbackServerContext* context,
    const warden::v1::ListHistoryRequest* request,
    warden::v1::ListHistoryResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.PolicyService/ListHistory");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  const size_t page =
      request->page_size() > 0 ? static_cast<size_t>(request->page_size()) : 50;
  auto history = bundles_->History(page + 1, request->before_revision());
  if (!history.ok()) return Done(context, ToGrpc(history.status()));
  for (size_t i = 0; i < history->size() && i < page; ++i) {
    const auto& sb = (*history)[i].signed_bundle();
    auto* out = response->add_bundles();
    out->set_revision(sb.revision());
    out->set_parent_revision(sb.parent_revision());
    // The content digest (what push printed and `policy diff` compares),
    // not the digest of the serialized bytes.
    warden::v1::PolicyBundle content;
    out->set_digest(content.ParseFromString(sb.bundle()) ? content.digest()
                                                         : sb.digest());
    out->set_created_by(sb.created_by());
    SetTime(sb.created_at(), out->mutable_created_at());
    out->set_message(sb.message());
    out->set_rollback_of(sb.rollback_of());
    for (const auto& s : (*history)[i].sources()) {
      out->add_source_names(s.name());
    }
  }
  if (history->size() > page) {
    response->set_next_before_revision(
        (*history)[page - 1].signed_bundle().revision());
  }
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PolicyServiceImpl::Rollback(
    grpc::CallbackServerContext* context,
    const warden::v1::RollbackRequest* request,
    warden::v1::RollbackResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.PolicyService/Rollback");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  auto result = bundles_->Rollback(request->to_revision(), request->message(),
                                   Caller(*who), absl::Now());
  if (!result.ok()) return Done(context, ToGrpc(result.status()));
  response->set_revision(result->revision);
  response->set_digest(result->digest);
  if (distributor_ != nullptr) distributor_->Publish();
  if (audit_ != nullptr) {
    audit_->Record(Caller(*who), "policy.rollback",
                   absl::StrCat("revision ", result->revision),
                   absl::StrCat("content of revision ", request->to_revision(),
                                ": ", request->message()));
  }
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PolicyServiceImpl::GetFleetStatus(
    grpc::CallbackServerContext* context,
    const warden::v1::GetFleetStatusRequest* request,
    warden::v1::GetFleetStatusResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.PolicyService/GetFleetStatus");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  auto head = bundles_->Head();
  if (!head.ok()) return Done(context, ToGrpc(head.status()));
  if (distributor_ != nullptr) {
    *response = distributor_->FleetStatus(request->environment());
  }
  // The store's head, authoritative even if no Publish() happened yet.
  response->set_current_revision(*head);
  return Done(context, grpc::Status::OK);
}

// ---------------------------------------------------------------------------
// TokenService

grpc::ServerUnaryReactor* TokenServiceImpl::CreateToken(
    grpc::CallbackServerContext* context,
    const warden::v1::CreateTokenRequest* request,
    warden::v1::CreateTokenResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.TokenService/CreateToken");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  std::vector<TokenScope> scopes;
  for (int s : request->scopes()) scopes.push_back(static_cast<TokenScope>(s));
  const absl::Duration ttl =
      request->has_ttl() ? FromDuration(request->ttl())
                         : absl::ZeroDuration();
  const bool bootstrap =
      std::find(scopes.begin(), scopes.end(),
                warden::v1::TOKEN_SCOPE_PROXY_ENROLL) != scopes.end();
  const bool service =
      std::find(scopes.begin(), scopes.end(),
                warden::v1::TOKEN_SCOPE_DATABASE_CONNECT) != scopes.end();
  if ((bootstrap || service) && scopes.size() != 1) {
    return Done(context,
                grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             bootstrap
                                 ? "a proxy:enroll token carries no other scope"
                                 : "a db:connect token carries no other scope"));
  }
  if (!bootstrap &&
      (!request->environment().empty() || !request->proxy_id().empty())) {
    return Done(context,
                grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "environment and proxy_id are only for "
                             "proxy:enroll (bootstrap) tokens"));
  }
  if (!service &&
      ((!bootstrap && request->environments_size() > 0) ||
       request->databases_size() > 0 || request->groups_size() > 0 ||
       !request->kind().empty())) {
    return Done(context,
                grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "databases, groups and kind are only for "
                             "db:connect (service) tokens; environments for "
                             "db:connect and proxy:enroll ones"));
  }
  auto list = [](const auto& field) {
    return std::vector<std::string>(field.begin(), field.end());
  };
  auto created =
      bootstrap ? tokens_->CreateBootstrap(request->name(),
                                           request->environment(),
                                           request->proxy_id(), ttl,
                                           Caller(*who), absl::Now(),
                                           list(request->environments()))
      : service ? tokens_->CreateService(
                      request->name(), request->kind(),
                      list(request->environments()),
                      list(request->databases()), list(request->groups()), ttl,
                      Caller(*who), absl::Now())
                : tokens_->Create(request->name(), scopes, ttl, Caller(*who),
                                  absl::Now());
  if (!created.ok()) return Done(context, ToGrpc(created.status()));
  if (service && service_tokens_changed_) service_tokens_changed_();
  if (audit_ != nullptr) {
    std::vector<std::string> names;
    for (int sc : created->info.scopes()) {
      names.push_back(warden::v1::TokenScope_Name(sc));
    }
    audit_->Record(
        Caller(*who), "token.create", created->info.id(),
        absl::StrCat(created->info.name(), " ", absl::StrJoin(names, ","),
                     created->info.environment().empty()
                         ? ""
                         : absl::StrCat(
                               " env ", created->info.environment(),
                               created->info.environments_size() == 0
                                   ? ""
                                   : " also serves ",
                               absl::StrJoin(created->info.environments(),
                                             ",")),
                     created->info.kind().empty()
                         ? ""
                         : " " + created->info.kind() + " env " +
                               absl::StrJoin(created->info.environments(), ",")));
  }
  response->set_token(created->token);
  *response->mutable_info() = created->info;
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* TokenServiceImpl::ListTokens(
    grpc::CallbackServerContext* context,
    const warden::v1::ListTokensRequest* request,
    warden::v1::ListTokensResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.TokenService/ListTokens");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  auto list = tokens_->List(request->include_inactive(), absl::Now());
  if (!list.ok()) return Done(context, ToGrpc(list.status()));
  for (auto& t : *list) *response->add_tokens() = std::move(t);
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* TokenServiceImpl::RevokeToken(
    grpc::CallbackServerContext* context,
    const warden::v1::RevokeTokenRequest* request,
    warden::v1::RevokeTokenResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.TokenService/RevokeToken");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  auto info = tokens_->Revoke(request->id(), absl::Now());
  if (!info.ok()) return Done(context, ToGrpc(info.status()));
  if (service_tokens_changed_ &&
      tokens::Tokens::HasScope(*info,
                               warden::v1::TOKEN_SCOPE_DATABASE_CONNECT)) {
    service_tokens_changed_();
  }
  if (audit_ != nullptr) {
    audit_->Record(Caller(*who), "token.revoke", info->id(), info->name());
  }
  *response->mutable_info() = *std::move(info);
  return Done(context, grpc::Status::OK);
}

// ---------------------------------------------------------------------------
// DirectoryService

namespace {

// Whether proxies accept each directory userName (lower case), as the
// policy bundle's entries say.
absl::StatusOr<absl::flat_hash_map<std::string, bool>> AcceptedNames(
    const directory::Directory& directory) {
  auto entries = directory.Entries();
  if (!entries.ok()) return entries.status();
  absl::flat_hash_map<std::string, bool> accepted;
  for (const auto& e : *entries) accepted[e.user_name()] = e.active();
  return accepted;
}

absl::Status FillIdentity(
    const directory::Directory& directory, const warden::v1::DirectoryUser& user,
    const absl::flat_hash_map<std::string, bool>& accepted,
    warden::v1::DirectoryIdentity* out) {
  out->set_id(user.id());
  out->set_user_name(user.user_name());
  // What proxies do: the bundle's entry, which also counts holds on the
  // user's names placed through other records (red team pass 10: a user
  // held through a deleted record's e-mail was listed as active).
  auto it = accepted.find(FoldName(user.user_name()));
  out->set_active(it != accepted.end() ? it->second
                                       : user.active() && !user.admin_hold());
  out->set_external_id(user.external_id());
  *out->mutable_emails() = user.emails();
  SetTimestamp(absl::FromUnixMillis(user.modified_unix_ms()),
               out->mutable_modified_at());
  auto groups = directory.GroupsOf(user.id());
  if (!groups.ok()) return groups.status();
  for (std::string& g : *groups) out->add_groups(std::move(g));
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* DirectoryServiceImpl::ListIdentities(
    grpc::CallbackServerContext* context,
    const warden::v1::ListIdentitiesRequest* request,
    warden::v1::ListIdentitiesResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.DirectoryService/ListIdentities");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  std::vector<warden::v1::DirectoryUser> users;
  if (!request->user_name().empty()) {
    auto user = directory_->FindUser(request->user_name());
    if (!user.ok()) return Done(context, ToGrpc(user.status()));
    users.push_back(*std::move(user));
  } else {
    auto all = directory_->Users();
    if (!all.ok()) return Done(context, ToGrpc(all.status()));
    users = *std::move(all);
  }
  auto accepted = AcceptedNames(*directory_);
  if (!accepted.ok()) return Done(context, ToGrpc(accepted.status()));
  for (const auto& user : users) {
    if (absl::Status s = FillIdentity(*directory_, user, *accepted,
                                      response->add_identities());
        !s.ok()) {
      return Done(context, ToGrpc(s));
    }
  }
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* DirectoryServiceImpl::SetIdentityActive(
    grpc::CallbackServerContext* context,
    const warden::v1::SetIdentityActiveRequest* request,
    warden::v1::SetIdentityActiveResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.DirectoryService/SetIdentityActive");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  const std::string name(absl::StripAsciiWhitespace(request->user_name()));
  if (name.empty()) {
    return Done(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                      "name the user to (de)activate"));
  }
  auto result =
      directory_->SetActive(name, request->active(), Caller(*who), absl::Now());
  if (!result.ok()) return Done(context, ToGrpc(result.status()));
  if (result->changed) {
    if (audit_ != nullptr) {
      audit_->Record(Caller(*who),
                     request->active() ? "directory.user.reactivate"
                                       : "directory.user.deactivate",
                     result->user.user_name(),
                     absl::StrCat("wardenctl identities",
                                  request->reason().empty() ? "" : ": ",
                                  request->reason()));
    }
    if (changed_) changed_();
  }
  response->set_created(result->created);
  response->set_note(result->note);
  response->set_refused(result->refused);
  auto accepted = AcceptedNames(*directory_);
  if (!accepted.ok()) return Done(context, ToGrpc(accepted.status()));
  if (absl::Status s = FillIdentity(*directory_, result->user, *accepted,
                                    response->mutable_identity());
      !s.ok()) {
    return Done(context, ToGrpc(s));
  }
  return Done(context, grpc::Status::OK);
}

// ---------------------------------------------------------------------------
// ProxyEnrollment

std::unique_ptr<proxies::Registry> NewProxyRegistry(
    state::StateMachine* state, const store::Store* store,
    const audit::Ledger* ledger, const distribution::Distributor* distributor,
    ca::Authority* authority) {
  auto registry = std::make_unique<proxies::Registry>(
      state, store,
      [ledger, distributor](const std::string& environment,
                            const std::string& proxy_id)
          -> absl::StatusOr<bool> {
        if (distributor->Knows(environment, proxy_id)) return true;
        auto acked =
            ledger->Acknowledged(absl::StrCat(environment, "/", proxy_id));
        if (!acked.ok()) return acked.status();
        return *acked > 0;
      });
  proxies::Registry* raw = registry.get();
  authority->SetEnrollmentCheck(
      [raw](const ProxyIdentity& identity) { return raw->Check(identity); });
  return registry;
}

absl::StatusOr<std::string> ProxyEnrollmentImpl::Issue(
    const std::string& csr_pem, const ca::ProxyIdentity& identity,
    warden::v1::EnrollResponse* response) const {
  auto cert = authority_->IssueProxy(csr_pem, identity, absl::Now(), ttl_);
  if (!cert.ok()) return cert.status();
  auto parsed = x509::Parse(*cert);
  if (!parsed.ok()) return parsed.status();
  response->set_certificate_pem(*cert);
  response->set_ca_certificate_pem(authority_->certificate_pem());
  response->set_proxy_id(identity.proxy_id);
  response->set_environment(identity.environment);
  SetTimestamp(parsed->not_after, response->mutable_not_after());
  return parsed->serial_hex;
}

namespace {

void ToEnrolledProxy(const warden::v1::ProxyRecord& r,
                     warden::v1::EnrolledProxy* out) {
  out->set_environment(r.environment());
  out->set_proxy_id(r.proxy_id());
  out->set_certificate_serial(r.certificate_serial());
  if (r.enrolled_unix_ms() != 0) {
    SetTimestamp(absl::FromUnixMillis(r.enrolled_unix_ms()),
                 out->mutable_enrolled_at());
  }
  out->set_enrolled_by(r.enrolled_by());
  if (r.renewed_unix_ms() != 0) {
    SetTimestamp(absl::FromUnixMillis(r.renewed_unix_ms()),
                 out->mutable_renewed_at());
  }
  out->set_renewals(r.renewals());
  out->set_revoked(r.revoked());
  if (r.revoked()) {
    SetTimestamp(absl::FromUnixMillis(r.revoked_unix_ms()),
                 out->mutable_revoked_at());
  }
  out->set_revoked_by(r.revoked_by());
  out->set_revoke_reason(r.revoke_reason());
}

}  // namespace

grpc::ServerUnaryReactor* ProxyEnrollmentImpl::Enroll(
    grpc::CallbackServerContext* context,
    const warden::v1::EnrollRequest* request,
    warden::v1::EnrollResponse* response) {
  auto who = Authorize(*tokens_, context, kEnrollMethod);
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  // A token that names the proxy decides; otherwise the proxy asks, and
  // gets the id only if it is free.
  ca::ProxyIdentity identity{who->proxy_id(), who->environment()};
  identity.also_serves.assign(who->environments().begin(),
                              who->environments().end());
  if (identity.proxy_id.empty()) identity.proxy_id = request->proxy_id();
  if (auto s = ValidateProxyName("proxy id", identity.proxy_id); !s.ok()) {
    return Done(context, ToGrpc(s));
  }
  if (auto s = CheckNotReserved("proxy id", identity.proxy_id); !s.ok()) {
    return Done(context, ToGrpc(s));
  }
  // Check the request before spending the token on it.
  if (auto pub = x509::RequestPublicKey(request->csr_pem()); !pub.ok()) {
    return Done(context, ToGrpc(pub.status()));
  }
  const std::string actor = Caller(*who);
  const absl::Status issued = registry_->Enroll(
      identity, actor, absl::Now(), [&]() -> absl::StatusOr<std::string> {
        if (auto s = tokens_->Consume(who->id(), absl::Now()); !s.ok()) {
          return s;
        }
        return Issue(request->csr_pem(), identity, response);
      });
  if (audit_ != nullptr) {
    audit_->Record(actor, "proxy.enroll",
                   absl::StrCat(identity.environment, "/", identity.proxy_id),
                   issued.ok() ? "certificate issued" : issued.ToString(),
                   issued.ok());
  }
  if (!issued.ok()) response->Clear();
  return Done(context, ToGrpc(issued));
}

grpc::ServerUnaryReactor* ProxyEnrollmentImpl::Renew(
    grpc::CallbackServerContext* context,
    const warden::v1::RenewRequest* request,
    warden::v1::EnrollResponse* response) {
  auto identity =
      authority_->AuthenticatePeer(*context->auth_context(), absl::Now());
  if (!identity.ok()) {
    // A certificate of Warden's CA that no longer speaks for its proxy (a
    // live proxy locked out by a fork, a stale copy): audited like every
    // renewal (red team). A caller without a proxy certificate is not.
    if (audit_ != nullptr && absl::IsPermissionDenied(identity.status())) {
      audit_->Record("unauthenticated", "proxy.renew",
                     PeerHost(context->peer()),
                     std::string(identity.status().message()), false);
    }
    return Done(context, ToGrpc(identity.status()));
  }
  if (max_age_ > absl::ZeroDuration()) {
    auto record = registry_->Get(identity->environment, identity->proxy_id);
    if (record.ok() && record->enrolled_unix_ms() != 0) {
      const absl::Time enrolled = absl::FromUnixMillis(record->enrolled_unix_ms());
      if (absl::Now() - enrolled > max_age_) {
        const std::string who =
            absl::StrCat(identity->environment, "/", identity->proxy_id);
        const absl::Status refused = absl::PermissionDeniedError(absl::StrCat(
            "proxy ", who, " was enrolled at ", absl::FormatTime(enrolled),
            " and certificates renew for at most ",
            absl::FormatDuration(max_age_),
            " after enrollment (--proxy-max-age); enroll it again: "
            "wardenctl proxies revoke ", who,
            " --reason re-enroll, then a new bootstrap token"));
        if (audit_ != nullptr) {
          audit_->Record("warden-control", "proxy.renew", who,
                         std::string(refused.message()), false);
        }
        return Done(context, ToGrpc(refused));
      }
    }
  }
  auto serial = Issue(request->csr_pem(), *identity, response);
  if (!serial.ok()) return Done(context, ToGrpc(serial.status()));
  const absl::Status renewed =
      registry_->Renewed(*identity, *serial, absl::Now());
  // Every renewal is in the audit trail, refused or not: which
  // certificate became which is how a fork of a proxy is found.
  if (audit_ != nullptr) {
    const std::string who =
        absl::StrCat(identity->environment, "/", identity->proxy_id);
    audit_->Record(
        absl::StrCat("proxy ", who), "proxy.renew", who,
        renewed.ok() ? absl::StrCat("certificate ",
                                    identity->certificate_serial,
                                    " renewed to ", *serial)
                     : std::string(renewed.message()),
        renewed.ok());
  }
  if (!renewed.ok()) {
    response->Clear();
    return Done(context, ToGrpc(renewed));
  }
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ProxyEnrollmentImpl::ListProxies(
    grpc::CallbackServerContext* context,
    const warden::v1::ListProxiesRequest* /*request*/,
    warden::v1::ListProxiesResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.ProxyEnrollment/ListProxies");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  auto records = registry_->List();
  if (!records.ok()) return Done(context, ToGrpc(records.status()));
  for (const auto& r : *records) ToEnrolledProxy(r, response->add_proxies());
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ProxyEnrollmentImpl::RevokeProxy(
    grpc::CallbackServerContext* context,
    const warden::v1::RevokeProxyRequest* request,
    warden::v1::RevokeProxyResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.ProxyEnrollment/RevokeProxy");
  if (!who.ok()) return Done(context, ToGrpc(who.status()));
  if (request->reason().empty()) {
    return Done(context, ToGrpc(absl::InvalidArgumentError(
                             "say why the proxy is revoked (reason)")));
  }
  const std::string actor = Caller(*who);
  auto revoked = registry_->Revoke(request->environment(), request->proxy_id(),
                                   actor, request->reason(), absl::Now());
  if (audit_ != nullptr) {
    audit_->Record(
        actor, "proxy.revoke",
        absl::StrCat(request->environment(), "/", request->proxy_id()),
        revoked.ok() ? request->reason() : revoked.status().ToString(),
        revoked.ok());
  }
  if (!revoked.ok()) return Done(context, ToGrpc(revoked.status()));
  ToEnrolledProxy(*revoked, response->mutable_proxy());
  return Done(context, grpc::Status::OK);
}

}  // namespace warden::controlplane::server
