#include "controlplane/server/login_service.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/jwt.h"
#include "common/names.h"
#include "common/oidc_claims.h"
#include "common/user_identity.h"
#include "common/x509.h"
#include "controlplane/server/audit_services.h"
#include "controlplane/server/services.h"
#include "policy/engine/engine.h"
#include "spdlog/spdlog.h"

namespace warden::controlplane::server {
namespace {

absl::Status TokenRefused(const absl::Status& why) {
  return absl::Status(why.code(),
                      absl::StrCat("token refused: ", why.message()));
}

std::string ClientId(const warden::v1::IdentityProviderSpec& spec) {
  if (!spec.client_id().empty()) return spec.client_id();
  return spec.audiences().empty() ? "" : spec.audiences(0);
}

// The first bytes of `text`, at most `max`, without splitting a UTF-8
// character.
std::string Prefix(absl::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return absl::StrCat(text.substr(0, n), "...");
}

// The identity kind a certificate just issued names (the response has no
// field for it), for the audit record.
std::string CertificateKind(const std::string& certificate_pem) {
  auto parsed = x509::Parse(certificate_pem);
  if (!parsed.ok()) return "?";
  auto identity = UserIdentityFromUris(parsed->subject.uris);
  return identity.ok() ? identity->kind : "?";
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

}  // namespace

LookAlikeIndex DirectoryNames(const warden::v1::PolicyBundle& bundle) {
  LookAlikeIndex names;
  for (const auto& entry : bundle.directory()) {
    names.Add(entry.user_name());
    for (const auto& alias : entry.aliases()) names.Add(alias);
    for (const auto& written : entry.written_names()) names.Add(written);
  }
  return names;
}

std::shared_ptr<const LookAlikeIndex> LoginImpl::KnownNames(
    const warden::v1::PolicyBundle& bundle) {
  absl::MutexLock lock(&names_mu_);
  if (names_ == nullptr || names_digest_ != bundle.digest()) {
    names_ = std::make_shared<const LookAlikeIndex>(DirectoryNames(bundle));
    names_digest_ = bundle.digest();
  }
  return names_;
}

absl::StatusOr<warden::v1::IssueUserCertificateResponse> IssueUserCertificate(
    const warden::v1::PolicyBundle& bundle, const ca::Authority& authority,
    const warden::v1::IssueUserCertificateRequest& request, absl::Time now,
    absl::Duration ttl, std::string* verified_user,
    const LookAlikeIndex* known_names) {
  if (bundle.identity_providers().empty()) {
    return absl::FailedPreconditionError(
        "no identity provider is configured: push a kind: IdentityProvider "
        "with the policies");
  }
  if (auto pub = x509::RequestPublicKey(request.csr_pem()); !pub.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate request: ", pub.status().message()));
  }
  auto issuer = jwt::PeekIssuer(request.id_token());
  if (!issuer.ok()) {
    return TokenRefused(absl::UnauthenticatedError(
        absl::StrCat("not an identity provider's token (",
                     issuer.status().message(), ")")));
  }
  const warden::v1::IdentityProviderSpec* spec = nullptr;
  for (const auto& p : bundle.identity_providers()) {
    if (p.issuer() == *issuer &&
        (request.provider().empty() || request.provider() == p.name())) {
      spec = &p;
      break;
    }
  }
  if (spec == nullptr) {
    // Nothing of the token is verified yet: its issuer is what the sender
    // wrote, and the recorded reason says so.
    return TokenRefused(absl::UnauthenticatedError(absl::StrCat(
        "unverified issuer \"", Prefix(*issuer, 200), "\" is not ",
        request.provider().empty()
            ? std::string("an identity provider of the policy bundle")
            : absl::StrCat("identity provider \"",
                           Prefix(request.provider(), 200), "\""))));
  }
  auto keys = jwt::KeySet::FromJwks(spec->jwks());
  if (!keys.ok()) {
    return absl::UnavailableError(
        absl::StrCat("identity provider ", spec->name(),
                     " has no usable keys yet: ", keys.status().message()));
  }
  jwt::VerifyOptions options = oidc::VerifyOptionsFromSpec(*spec);
  options.now = now;
  auto claims = jwt::Verify(request.id_token(), *keys, options);
  if (!claims.ok()) return TokenRefused(claims.status());
  auto mapped = oidc::MapClaims(*claims, oidc::ClaimRulesFromSpec(*spec));
  if (!mapped.ok()) return TokenRefused(mapped.status());
  if (verified_user != nullptr) *verified_user = mapped->user;
  // As on the proxy: no certificate for a name that passes on screen for
  // another person's.
  if (absl::Status s = CheckNameIsDistinct(mapped->user); !s.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the user name ", s.message()));
  }
  // Nor for a name that looks like a directory name without being one.
  if (policy::engine::FindDirectoryEntry(bundle, mapped->user).entry ==
      nullptr) {
    LookAlikeIndex made;
    if (known_names == nullptr) {
      made = DirectoryNames(bundle);
      known_names = &made;
    }
    if (const std::string like = known_names->Find(mapped->user);
        !like.empty()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the user name looks like ", like,
          ", another user of Warden's directory (Unicode confusables, "
          "UTS #39), and would pass for that person"));
    }
  }
  // A user the directory deactivated gets no certificate (proxies would
  // refuse it anyway; this says so at login). Same matching as proxies:
  // userName first, then e-mail aliases, ignoring case.
  const policy::engine::DirectoryMatch match =
      policy::engine::FindDirectoryEntry(bundle, mapped->user);
  if (match.ambiguous) {
    return absl::PermissionDeniedError(absl::StrCat(
        mapped->user,
        " is an e-mail alias of more than one user in Warden's directory, so "
        "it names no one for sure"));
  }
  if (match.entry != nullptr && !match.entry->active()) {
    const std::string& why = match.entry->inactive_because();
    return absl::PermissionDeniedError(
        absl::StrCat(mapped->user, " is deactivated in Warden's directory",
                     why.empty() ? "" : ": ", why));
  }
  // A token issued before the name became its current holder's was issued
  // to the one before: no certificate (it would carry a fresh notBefore
  // and pass the proxies' same check).
  if (match.entry != nullptr) {
    const std::optional<absl::Time> reused =
        policy::engine::NameReusedAt(*match.entry, mapped->user);
    if (reused.has_value() && absl::ToUnixSeconds(claims->issued) <=
                                  absl::ToUnixSeconds(*reused)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "this token was issued before the name ", FoldName(mapped->user),
          " became its current user's (",
          absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *reused, absl::UTCTimeZone()),
          "; it changed hands in the identity provider): sign in to the "
          "identity provider again"));
    }
  }
  // The kind this provider's tokens give (as on the proxy, where the same
  // token sent as the password gets it), carried in the certificate so the
  // proxy reads back the same identity.
  UserIdentity identity{mapped->user, mapped->groups, spec->name(),
                        spec->kind().empty() ? "human" : spec->kind()};
  auto cert = authority.IssueUser(request.csr_pem(), identity, now, ttl);
  if (!cert.ok()) return cert.status();
  auto parsed = x509::Parse(*cert);
  if (!parsed.ok()) return parsed.status();
  warden::v1::IssueUserCertificateResponse response;
  response.set_certificate_pem(*cert);
  response.set_ca_certificate_pem(authority.certificate_pem());
  response.set_user(identity.user);
  for (const auto& g : identity.groups) response.add_groups(g);
  response.set_provider(identity.provider);
  response.mutable_not_after()->set_seconds(absl::ToUnixSeconds(parsed->not_after));
  return response;
}

absl::StatusOr<warden::v1::PolicyBundle> LoginImpl::HeadBundle() const {
  auto head = bundles_->Get(0);
  if (absl::IsNotFound(head.status())) {
    return absl::FailedPreconditionError(
        "no policies pushed yet, so no identity provider is configured");
  }
  if (!head.ok()) return head.status();
  warden::v1::PolicyBundle bundle;
  if (!bundle.ParseFromString(head->signed_bundle().bundle())) {
    return absl::InternalError("the head bundle does not parse");
  }
  return bundle;
}

grpc::ServerUnaryReactor* LoginImpl::ListProviders(
    grpc::CallbackServerContext* context,
    const warden::v1::ListProvidersRequest* /*request*/,
    warden::v1::ListProvidersResponse* response) {
  auto bundle = HeadBundle();
  if (!bundle.ok()) return Finish(context, bundle.status());
  for (const auto& spec : bundle->identity_providers()) {
    auto* p = response->add_providers();
    p->set_name(spec.name());
    p->set_issuer(spec.issuer());
    p->set_client_id(ClientId(spec));
    for (const auto& e : spec.environments()) p->add_environments(e);
  }
  return Finish(context, absl::OkStatus());
}

LoginImpl::LoginImpl(const bundles::Bundles* bundles,
                     const ca::Authority* authority,
                     absl::Duration certificate_ttl, AdminAudit* audit,
                     LoginFailures::Options failures)
    : bundles_(bundles),
      authority_(authority),
      ttl_(certificate_ttl),
      audit_(audit),
      failures_(failures) {
  summarizer_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      RecordSummaries(false);
    }
  });
}

LoginImpl::~LoginImpl() {
  stop_.Notify();
  summarizer_.join();
  RecordSummaries(true);
}

void LoginImpl::RecordSummaries(bool all) {
  for (const auto& s : failures_.TakeSummaries(absl::Now(), all)) {
    const std::string text = LoginFailures::Describe(s);
    spdlog::warn("wardenctl login: {}", text);
    if (audit_ != nullptr) {
      audit_->Record("unauthenticated", "identity.certificate.failures",
                     s.address, text, false);
    }
  }
}

grpc::ServerUnaryReactor* LoginImpl::IssueUserCertificate(
    grpc::CallbackServerContext* context,
    const warden::v1::IssueUserCertificateRequest* request,
    warden::v1::IssueUserCertificateResponse* response) {
  // Nobody is authenticated yet: a peer that keeps failing is refused
  // before its token is looked at, and counted.
  const std::string peer = PeerHost(context->peer());
  if (failures_.Refuse(peer, absl::Now())) {
    return Finish(context,
                  absl::ResourceExhaustedError(absl::StrCat(
                      "too many refused logins from ", peer,
                      "; try again in a minute")));
  }
  auto bundle = HeadBundle();
  std::string verified_user;
  absl::StatusOr<warden::v1::IssueUserCertificateResponse> issued =
      bundle.ok() ? server::IssueUserCertificate(*bundle, *authority_, *request,
                                                 absl::Now(), ttl_,
                                                 &verified_user,
                                                 KnownNames(*bundle).get())
                  : bundle.status();
  // Refusals count toward the peer's window whether or not they are
  // recorded; beyond the first ones in it, only its summary says so.
  const bool record_refusal =
      !issued.ok() && failures_.Failed(peer, "", absl::Now());
  if (audit_ != nullptr) {
    if (issued.ok()) {
      audit_->Record(
          issued->user(), "identity.certificate",
          absl::StrCat(issued->provider(), "/", issued->user()),
          absl::StrCat("certificate issued until ",
                       absl::FormatTime(
                           "%Y-%m-%dT%H:%M:%SZ",
                           absl::FromUnixSeconds(issued->not_after().seconds()),
                           absl::UTCTimeZone()),
                       "; kind: ", CertificateKind(issued->certificate_pem()),
                       "; groups: ", absl::StrJoin(issued->groups(), ",")),
          true);
    } else if (record_refusal) {
      // Under who asked: the verified user when the token held and the
      // directory refused them (so `audit search --user` finds a cut-off
      // person's attempts; red team), else whom the token claimed to be,
      // marked unverified (anyone can write that).
      std::string claimed;
      if (verified_user.empty()) {
        claimed = jwt::PeekClaim(request->id_token(),
                                 {"email", "preferred_username", "sub"});
        if (claimed.size() > 256) claimed.resize(256);
      }
      audit_->Record(
          verified_user.empty() ? "unauthenticated" : verified_user,
          "identity.certificate",
          !verified_user.empty()
              ? verified_user
              : claimed.empty()
                    ? (request->provider().empty() ? "-" : request->provider())
                    : absl::StrCat(request->provider().empty()
                                       ? ""
                                       : request->provider() + "/",
                                   QuoteUnverifiedName(claimed),
                                   " (unverified)"),
          absl::StrCat(issued.status().ToString(), " (from ", peer, ")"),
          false);
    }
  }
  if (!issued.ok()) return Finish(context, issued.status());
  *response = *std::move(issued);
  return Finish(context, absl::OkStatus());
}

}  // namespace warden::controlplane::server
