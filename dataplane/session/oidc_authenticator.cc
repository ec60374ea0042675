#include "dataplane/session/oidc_authenticator.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/files.h"
#include "common/oidc_claims.h"
#include "common/warden_token.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/messages.h"
#include "spdlog/spdlog.h"
#include "common/names.h"
#include "dataplane/pgwire/sqlstate.h"

namespace warden::dataplane::session {
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
  step.client_sqlstate = pgwire::kInvalidAuthorization;
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
    if (absl::StartsWith(token, kWardenTokenTag)) return ServiceToken(token);
    auto issuer = jwt::PeekIssuer(token);
    if (!issuer.ok()) {
      return Refused(absl::UnauthenticatedError(absl::StrCat(
                         "the password is not an identity provider's token (",
                         issuer.status().message(), ")")),
                     "oidc");
    }
    const std::shared_ptr<const ResolvedProvider> provider =
        authenticator_->Find(*issuer, request_.environment);
    if (provider == nullptr) {
      return Refused(absl::UnauthenticatedError(absl::StrCat(
                         "unverified issuer '", issuer->substr(0, 200),
                         "' (read from a token whose signature was not "
                         "checked) is not an identity provider of this "
                         "listener")),
                     "oidc");
    }
    const config::IdentityProvider& idp = provider->config;
    const std::string method = absl::StrCat("oidc:", idp.name);
    jwt::VerifyOptions options;
    options.issuer = idp.issuer;
    options.audiences = idp.audiences;
    options.algorithms = idp.algorithms;
    options.clock_skew = absl::Milliseconds(idp.clock_skew_ms);
    options.max_lifetime = absl::Milliseconds(idp.max_token_lifetime_ms);
    auto claims = jwt::Verify(token, *provider->Keys(false), options);
    if (!claims.ok() &&
        absl::StrContains(claims.status().message(), "unknown key id")) {
      // The provider may have rotated its keys since they were read.
      claims = jwt::Verify(token, *provider->Keys(/*force=*/true), options);
    }
    if (!claims.ok()) return Refused(claims.status(), method);
    oidc::ClaimRules rules;
    rules.provider = idp.name;
    rules.user_claim = idp.user_claim;
    rules.groups_claims = idp.groups_claims;
    rules.required_claims = idp.required_claims;
    auto mapped = oidc::MapClaims(*claims, rules);
    if (!mapped.ok()) return Refused(mapped.status(), method);
    if (!SameName(mapped->user, request_.user)) {
      return Refused(absl::PermissionDeniedError(absl::StrCat(
                         "the token is for '", mapped->user, "', not '",
                         request_.user, "'; connect with user=", mapped->user)),
                     method);
    }
    AuthStep step;
    step.state = AuthStep::State::kSuccess;
    step.identity.set_user(mapped->user);
    for (auto& g : mapped->groups) step.identity.add_groups(std::move(g));
    step.identity.set_kind(KindOf(idp.kind));
    step.identity.set_auth_method(method);
    step.credential_issued = claims->issued;
    return step;
  }

 private:
  AuthStep ServiceToken(absl::string_view token) {
    const char* method = "service-token";
    auto t = authenticator_->FindServiceToken(token, request_.environment,
                                              request_.database);
    if (!t.ok()) return Refused(t.status(), method);
    if (t->name() != request_.user) {
      return Refused(absl::PermissionDeniedError(absl::StrCat(
                         "the token is for '", t->name(), "', not '",
                         request_.user, "'; connect with user=", t->name())),
                     method);
    }
    AuthStep step;
    step.state = AuthStep::State::kSuccess;
    step.identity.set_user(t->name());
    for (const auto& g : t->groups()) step.identity.add_groups(g);
    step.identity.set_kind(KindOf(t->kind()));
    step.identity.set_auth_method(method);
    return step;
  }

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
    const config::ProxyConfig& config, const config::Listener& listener,
    BundleSource bundle) {
  auto auth = std::unique_ptr<OidcAuthenticator>(new OidcAuthenticator());
  auth->bundle_ = std::move(bundle);
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
    ResolvedProvider p;
    p.config = idp;
    p.file_keys = keys->get();
    auth->file_keys_.push_back(*std::move(keys));
    auth->configured_.push_back(std::move(p));
  }
  return auth;
}

std::shared_ptr<const BundleIdentities> OidcAuthenticator::BundleProviders() {
  std::shared_ptr<const warden::v1::PolicyBundle> bundle =
      bundle_ ? bundle_() : nullptr;
  absl::MutexLock lock(&mu_);
  if (bundle == parsed_from_ && from_bundle_ != nullptr) return from_bundle_;
  auto list = std::make_shared<BundleIdentities>();
  if (bundle != nullptr) {
    for (const auto& t : bundle->service_tokens()) {
      list->service_tokens[t.id()] = t;
    }
    for (const auto& spec : bundle->identity_providers()) {
      auto keys = jwt::KeySet::FromJwks(spec.jwks());
      if (!keys.ok()) {
        // Signed by warden-control, which checked it: log and skip.
        spdlog::error("identity provider {} in the policy bundle has no "
                      "usable keys: {}",
                      spec.name(), keys.status().ToString());
        continue;
      }
      ResolvedProvider p;
      p.config.name = spec.name();
      p.config.issuer = spec.issuer();
      p.config.audiences.assign(spec.audiences().begin(),
                                spec.audiences().end());
      if (spec.algorithms_size() > 0) {
        p.config.algorithms.assign(spec.algorithms().begin(),
                                   spec.algorithms().end());
      }
      if (!spec.user_claim().empty()) p.config.user_claim = spec.user_claim();
      if (spec.groups_claims_size() > 0) {
        p.config.groups_claims.assign(spec.groups_claims().begin(),
                                      spec.groups_claims().end());
      }
      for (const auto& cv : spec.required_claims()) {
        p.config.required_claims.emplace_back(cv.claim(), cv.value());
      }
      if (spec.clock_skew_seconds() > 0) {
        p.config.clock_skew_ms =
            static_cast<int>(spec.clock_skew_seconds() * 1000);
      }
      if (spec.max_token_lifetime_seconds() > 0) {
        p.config.max_token_lifetime_ms =
            static_cast<int>(spec.max_token_lifetime_seconds() * 1000);
      }
      if (!spec.kind().empty()) p.config.kind = spec.kind();
      p.environments.assign(spec.environments().begin(),
                            spec.environments().end());
      p.keys = std::make_shared<const jwt::KeySet>(*std::move(keys));
      list->providers.push_back(std::move(p));
    }
  }
  parsed_from_ = std::move(bundle);
  from_bundle_ = std::move(list);
  return from_bundle_;
}

std::shared_ptr<const ResolvedProvider> OidcAuthenticator::Find(
    const std::string& issuer, const std::string& environment) {
  for (const auto& p : configured_) {
    // Lives as long as the authenticator, which outlives its exchanges.
    if (p.config.issuer == issuer) {
      return std::shared_ptr<const ResolvedProvider>(std::shared_ptr<void>(),
                                                     &p);
    }
  }
  const std::shared_ptr<const BundleIdentities> list = BundleProviders();
  for (const auto& p : list->providers) {
    if (p.config.issuer != issuer) continue;
    if (!p.environments.empty() &&
        std::none_of(p.environments.begin(), p.environments.end(),
                     [&](const std::string& glob) {
                       return fnmatch(glob.c_str(), environment.c_str(), 0) ==
                              0;
                     })) {
      continue;
    }
    return std::shared_ptr<const ResolvedProvider>(list, &p);
  }
  return nullptr;
}

absl::StatusOr<warden::v1::ServiceToken> OidcAuthenticator::FindServiceToken(
    absl::string_view token, const std::string& environment,
    const std::string& database) {
  auto parsed = ParseWardenToken(token);
  if (!parsed.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("service token: ", parsed.status().message()));
  }
  const std::string& id = parsed->id;
  const std::shared_ptr<const BundleIdentities> ids = BundleProviders();
  const auto it = ids->service_tokens.find(id);
  if (it == ids->service_tokens.end() ||
      !crypto::ConstantTimeEquals(WardenTokenSecretHash(parsed->secret),
                                  it->second.secret_sha256())) {
    // Unknown, revoked (no longer in the bundle) or a wrong secret: the
    // same answer, so the bundle's contents cannot be probed.
    return absl::UnauthenticatedError(absl::StrCat(
        "service token ", id, " is unknown, revoked or wrong"));
  }
  const warden::v1::ServiceToken& t = it->second;
  if (t.expires_at_unix() != 0 &&
      absl::FromUnixSeconds(t.expires_at_unix()) <= absl::Now()) {
    return absl::UnauthenticatedError(
        absl::StrCat("service token ", id, " (", t.name(), ") has expired"));
  }
  if (std::find(t.environments().begin(), t.environments().end(),
                environment) == t.environments().end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("service token ", id, " (", t.name(),
                     ") is not for environment ", environment));
  }
  if (t.databases_size() > 0 &&
      std::find(t.databases().begin(), t.databases().end(), database) ==
          t.databases().end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("service token ", id, " (", t.name(),
                     ") is not for database ", database));
  }
  return t;
}

std::unique_ptr<AuthExchange> OidcAuthenticator::Begin(
    const AuthRequest& request) {
  return std::make_unique<OidcExchange>(this, request);
}

}  // namespace warden::dataplane::session
