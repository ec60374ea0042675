#include "dataplane/session/oidc_authenticator.h"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/messages.h"
#include "spdlog/spdlog.h"

namespace warden::session {
namespace {

std::string FileFingerprint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":",
                      st.st_size, ":", st.st_ino);
}

warden::v1::IdentityKind KindOf(const std::string& kind) {
  if (kind == "agent") return warden::v1::IDENTITY_KIND_AGENT;
  if (kind == "service") return warden::v1::IDENTITY_KIND_SERVICE;
  return warden::v1::IDENTITY_KIND_HUMAN;
}

AuthStep Refused(absl::Status why, std::string method) {
  AuthStep step;
  step.state = AuthStep::State::kFailure;
  step.client_sqlstate = "28000";
  // Unlike a password, a token's faults are no secret to its holder, and
  // "expired" or "wrong audience" is what they need to fix it.
  step.client_error = absl::StrCat("Warden: token refused: ", why.message());
  step.error = std::move(why);
  step.method = std::move(method);
  return step;
}

class OidcExchange : public AuthExchange {
 public:
  OidcExchange(OidcAuthenticator* authenticator, AuthRequest request)
      : authenticator_(authenticator), request_(std::move(request)) {}

  AuthStep Start() override {
    if (!request_.tls) {  // the listener config requires TLS; a guard.
      done_ = true;
      return Refused(absl::FailedPreconditionError(
                         "tokens are only accepted over TLS"),
                     "oidc");
    }
    AuthStep step;
    pgwire::WriteAuthenticationCleartextPassword(&step.reply);
    return step;
  }

  AuthStep OnMessage(absl::string_view body) override {
    if (done_) {
      return Refused(absl::FailedPreconditionError("exchange already ended"),
                     "oidc");
    }
    done_ = true;
    auto password = pgwire::ParsePasswordMessage(body);
    if (!password.ok()) return Refused(password.status(), "oidc");
    const absl::string_view token = absl::StripAsciiWhitespace(*password);
    auto issuer = jwt::PeekIssuer(token);
    if (!issuer.ok()) {
      return Refused(absl::UnauthenticatedError(absl::StrCat(
                         "the password is not an identity provider's token (",
                         issuer.status().message(), ")")),
                     "oidc");
    }
    OidcAuthenticator::Provider* provider = authenticator_->Find(*issuer);
    if (provider == nullptr) {
      return Refused(absl::UnauthenticatedError(absl::StrCat(
                         "issuer '", issuer->substr(0, 200),
                         "' is not an identity provider of this listener")),
                     "oidc");
    }
    const config::IdentityProvider& idp = *provider->config;
    const std::string method = absl::StrCat("oidc:", idp.name);
    jwt::VerifyOptions options;
    options.issuer = idp.issuer;
    options.audiences = idp.audiences;
    options.algorithms = idp.algorithms;
    options.clock_skew = absl::Milliseconds(idp.clock_skew_ms);
    options.max_lifetime = absl::Milliseconds(idp.max_token_lifetime_ms);
    auto claims = jwt::Verify(token, *provider->keys->Current(), options);
    if (!claims.ok() &&
        absl::StrContains(claims.status().message(), "unknown key id")) {
      // The provider may have rotated its keys since they were read.
      claims = jwt::Verify(token, *provider->keys->Current(/*force=*/true),
                           options);
    }
    if (!claims.ok()) return Refused(claims.status(), method);
    for (const auto& [name, want] : idp.required_claims) {
      const std::string got = claims->String(name);
      if (got != want) {
        return Refused(
            absl::PermissionDeniedError(absl::StrCat(
                "claim '", name, "' is '", got, "', ", idp.name,
                " requires '", want, "'")),
            method);
      }
    }
    if (idp.user_claim == "email" &&
        claims->String("email_verified") == "false") {
      return Refused(absl::PermissionDeniedError(
                         "the token's email is not verified by the provider"),
                     method);
    }
    const std::string user = claims->String(idp.user_claim);
    if (user.empty()) {
      return Refused(absl::PermissionDeniedError(absl::StrCat(
                         "the token has no '", idp.user_claim,
                         "' claim to name the user")),
                     method);
    }
    if (!absl::EqualsIgnoreCase(user, request_.user)) {
      return Refused(absl::PermissionDeniedError(absl::StrCat(
                         "the token is for '", user, "', not '", request_.user,
                         "'; connect with user=", user)),
                     method);
    }
    AuthStep step;
    step.state = AuthStep::State::kSuccess;
    step.identity.set_user(user);
    std::vector<std::string> groups;
    for (const auto& claim : idp.groups_claims) {
      for (auto& g : claims->List(claim)) {
        if (std::find(groups.begin(), groups.end(), g) == groups.end()) {
          groups.push_back(std::move(g));
        }
      }
    }
    for (auto& g : groups) step.identity.add_groups(std::move(g));
    step.identity.set_kind(KindOf(idp.kind));
    step.identity.set_auth_method(method);
    return step;
  }

 private:
  OidcAuthenticator* const authenticator_;
  const AuthRequest request_;
  bool done_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ProviderKeys>> ProviderKeys::Load(
    std::string path) {
  std::unique_ptr<ProviderKeys> keys(new ProviderKeys(std::move(path)));
  absl::MutexLock lock(&keys->mu_);
  if (absl::Status s = keys->Reload(); !s.ok()) return s;
  return keys;
}

absl::Status ProviderKeys::Reload() {
  const std::string fingerprint = FileFingerprint(path_);
  auto text = ReadFile(path_);
  if (!text.ok()) return text.status();
  auto parsed = jwt::KeySet::FromJwks(*text);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", parsed.status().message()));
  }
  for (const auto& skipped : parsed->skipped()) {
    spdlog::warn("{}: skipped {}", path_, skipped);
  }
  keys_ = std::make_shared<const jwt::KeySet>(*std::move(parsed));
  fingerprint_ = fingerprint;
  return absl::OkStatus();
}

std::shared_ptr<const jwt::KeySet> ProviderKeys::Current(bool force) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (force || now - checked_ >= absl::Seconds(1)) {
    checked_ = now;
    if (FileFingerprint(path_) != fingerprint_) {
      if (absl::Status s = Reload(); !s.ok()) {
        spdlog::error("identity provider keys not reloaded, the previous "
                      "ones stay in use: {}",
                      s.ToString());
      } else {
        spdlog::info("identity provider keys reloaded from {} ({} keys)",
                     path_, keys_->size());
      }
    }
  }
  return keys_;
}

absl::StatusOr<std::unique_ptr<OidcAuthenticator>> OidcAuthenticator::Create(
    const config::ProxyConfig& config, const config::Listener& listener) {
  auto auth = std::unique_ptr<OidcAuthenticator>(new OidcAuthenticator());
  for (const auto& idp : config.identity_providers) {
    if (!listener.identity_providers.empty() &&
        std::find(listener.identity_providers.begin(),
                  listener.identity_providers.end(),
                  idp.name) == listener.identity_providers.end()) {
      continue;
    }
    auto keys = ProviderKeys::Load(idp.jwks_file);
    if (!keys.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("identity provider ", idp.name, ": ",
                       keys.status().message()));
    }
    auth->providers_.push_back(Provider{&idp, *std::move(keys)});
  }
  return auth;
}

OidcAuthenticator::Provider* OidcAuthenticator::Find(
    const std::string& issuer) {
  for (auto& p : providers_) {
    if (p.config->issuer == issuer) return &p;
  }
  return nullptr;
}

std::unique_ptr<AuthExchange> OidcAuthenticator::Begin(
    const AuthRequest& request) {
  return std::make_unique<OidcExchange>(this, request);
}

}  // namespace warden::session
