#include "dataplane/session/cert_authenticator.h"

#include <fnmatch.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proxy_identity.h"
#include "common/user_identity.h"
#include "common/x509.h"
#include "common/names.h"
#include "dataplane/pgwire/sqlstate.h"

namespace warden::dataplane::session {
namespace {

AuthStep Refused(absl::Status why, std::string method) {
  AuthStep step;
  step.state = AuthStep::State::kFailure;
  step.client_sqlstate = pgwire::kInvalidAuthorization;
  // The holder of a certificate learns nothing secret from why it is
  // refused, and needs it to fix the connection.
  step.client_error =
      absl::StrCat("Warden: certificate refused: ", why.message());
  step.error = std::move(why);
  step.method = std::move(method);
  return step;
}

// The kind a certificate names (common/user_identity checked it is one of
// the three); nothing defaults to human.
absl::StatusOr<warden::v1::IdentityKind> KindOf(const std::string& kind) {
  if (kind == "human") return warden::v1::IDENTITY_KIND_HUMAN;
  if (kind == "agent") return warden::v1::IDENTITY_KIND_AGENT;
  if (kind == "service") return warden::v1::IDENTITY_KIND_SERVICE;
  return absl::PermissionDeniedError(
      absl::StrCat("unknown identity kind '", kind, "'"));
}

// Whether `bundle` still has the certificate's provider, accepts it in
// `environment`, and gives the kind the certificate names (a provider whose
// kind changed since the login would otherwise keep its old kind in
// certificates while its tokens get the new one).
absl::Status ProviderAccepted(const warden::v1::PolicyBundle& bundle,
                              const UserIdentity& identity,
                              const std::string& environment) {
  const std::string& provider = identity.provider;
  for (const auto& spec : bundle.identity_providers()) {
    if (spec.name() != provider) continue;
    if (!spec.environments().empty() &&
        std::none_of(spec.environments().begin(), spec.environments().end(),
                     [&](const std::string& glob) {
                       return fnmatch(glob.c_str(), environment.c_str(), 0) ==
                              0;
                     })) {
      return absl::PermissionDeniedError(
          absl::StrCat("identity provider ", provider,
                       " is not accepted in environment ", environment));
    }
    const std::string kind = spec.kind().empty() ? "human" : spec.kind();
    if (kind != identity.kind) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the certificate names kind ", identity.kind, ", identity provider ",
          provider, " now gives kind ", kind, "; run `wardenctl login` again"));
    }
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "identity provider ", provider, " is not in the policy bundle"));
}

class CertExchange : public AuthExchange {
 public:
  explicit CertExchange(AuthStep verdict) : verdict_(std::move(verdict)) {}
  AuthStep Start() override { return verdict_; }
  AuthStep OnMessage(absl::string_view /*body*/) override {
    return Refused(absl::FailedPreconditionError(
                       "no password is asked on a certificate listener"),
                   "cert");
  }

 private:
  const AuthStep verdict_;
};

}  // namespace

AuthStep CertAuthenticator::Authenticate(
    const AuthRequest& request, const std::string& ca_pem, absl::Time now,
    const warden::v1::PolicyBundle* bundle) {
  std::shared_ptr<const x509::Anchor> anchor;
  if (!ca_pem.empty()) {
    auto parsed = x509::Anchor::FromPem(ca_pem);
    if (!parsed.ok()) {
      return Refused(absl::UnavailableError(absl::StrCat(
                         "this proxy cannot read Warden's CA: ",
                         parsed.status().message())),
                     "cert");
    }
    anchor = *std::move(parsed);
  }
  return Authenticate(request, anchor.get(), now, bundle);
}

AuthStep CertAuthenticator::Authenticate(
    const AuthRequest& request, const x509::Anchor* ca, absl::Time now,
    const warden::v1::PolicyBundle* bundle) {
  if (!request.tls) {  // the listener config requires TLS; a guard.
    return Refused(absl::FailedPreconditionError(
                       "client certificates are only accepted over TLS"),
                   "cert");
  }
  if (request.peer_certificate_pem.empty()) {
    return Refused(
        absl::UnauthenticatedError(
            "no client certificate: get one with `wardenctl login` and "
            "connect with sslcert=... sslkey=... (the lines it prints)"),
        "cert");
  }
  if (ca == nullptr) {
    return Refused(absl::UnavailableError(
                       "this proxy does not know Warden's CA yet (it has not "
                       "enrolled with warden-control)"),
                   "cert");
  }
  // One decode of the certificate for both (see x509::Anchor).
  auto cert = ca->VerifyAndParse(request.peer_certificate_pem, now,
                                 x509::Purpose::kClientAuth);
  if (!cert.ok()) {
    return Refused(
        absl::UnauthenticatedError(
            absl::StrCat("not a valid certificate from Warden's CA (",
                         cert.status().message(), ")")),
        "cert");
  }
  const std::string serial = absl::StrCat("serial ", cert->serial_hex);
  if (ProxyIdentityFromUris(cert->subject.uris).ok()) {
    return Refused(absl::PermissionDeniedError(absl::StrCat(
                       "certificate ", serial,
                       " names a Warden proxy, not a person")),
                   "cert");
  }
  auto identity = UserIdentityFromUris(cert->subject.uris);
  if (!identity.ok()) {
    return Refused(absl::PermissionDeniedError(absl::StrCat(
                       "certificate ", serial, ": ",
                       identity.status().message())),
                   "cert");
  }
  const std::string method = absl::StrCat("cert:", identity->provider);
  if (!SameName(identity->user, request.user)) {
    return Refused(absl::PermissionDeniedError(absl::StrCat(
                       "the certificate (", serial, ") is for '",
                       identity->user, "', not '", request.user,
                       "'; connect with user=", identity->user)),
                   method);
  }
  if (bundle != nullptr) {
    if (absl::Status s =
            ProviderAccepted(*bundle, *identity, request.environment);
        !s.ok()) {
      return Refused(s, method);
    }
  }
  auto kind = KindOf(identity->kind);
  if (!kind.ok()) {
    return Refused(absl::PermissionDeniedError(absl::StrCat(
                       "certificate ", serial, ": ", kind.status().message())),
                   method);
  }
  AuthStep step;
  step.state = AuthStep::State::kSuccess;
  step.identity.set_user(identity->user);
  for (auto& g : identity->groups) step.identity.add_groups(std::move(g));
  step.identity.set_kind(*kind);
  step.identity.set_auth_method(method);
  // Warden's CA backdates notBefore by a minute (a tenth of the lifetime
  // for short ones): the issue time is that much later.
  step.credential_issued =
      cert->not_before +
      std::min(absl::Minutes(1), (cert->not_after - cert->not_before) / 11);
  return step;
}

std::shared_ptr<const x509::Anchor> CertAuthenticator::Anchor() {
  std::string pem = ca_ ? ca_() : "";
  absl::MutexLock lock(&mu_);
  if (pem != anchor_pem_) {
    anchor_pem_ = std::move(pem);
    anchor_.reset();
    if (!anchor_pem_.empty()) {
      auto parsed = x509::Anchor::FromPem(anchor_pem_);
      if (parsed.ok()) anchor_ = *std::move(parsed);
    }
  }
  return anchor_;
}

std::unique_ptr<AuthExchange> CertAuthenticator::Begin(
    const AuthRequest& request) {
  const std::shared_ptr<const warden::v1::PolicyBundle> bundle =
      bundle_ ? bundle_() : nullptr;
  const std::shared_ptr<const x509::Anchor> anchor = Anchor();
  return std::make_unique<CertExchange>(
      Authenticate(request, anchor.get(), absl::Now(), bundle.get()));
}

}  // namespace warden::dataplane::session
