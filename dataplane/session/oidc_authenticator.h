// Authenticates clients by a token sent as the password (listeners with
// `auth: token`, also spelled `oidc`; TLS only): a Warden service token
// (wdn_..., for agents and services; checked against the hashes in the
// policy bundle) or an OpenID Connect token. psql, JDBC and every
// driver can send one without plugins. The token must verify against its
// provider's keys (common/jwt: RS256/ES256 only, issuer, audience, expiry
// with bounded skew, lifetime), carry the provider's required claims, and
// name the user the client connects as. Its claims give the identity: the
// user claim (email by default), groups from the configured claims, and
// the provider's kind (human, agent, service).
#ifndef WARDEN_DATAPLANE_SESSION_OIDC_AUTHENTICATOR_H_
#define WARDEN_DATAPLANE_SESSION_OIDC_AUTHENTICATOR_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/jwt.h"
#include "dataplane/config/config.h"
#include "dataplane/session/authenticator.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::dataplane::session {

// A provider's key set, read from its JWKS file and read again when the
// file changes (checked at most once a second, and at once when a token
// names a key id the current set lacks: the provider rotated its keys).
// A file that becomes unreadable or invalid keeps the last good keys and
// logs why. Thread-safe.
class ProviderKeys {
 public:
  static absl::StatusOr<std::unique_ptr<ProviderKeys>> Load(std::string path);
  // The current keys; `force` re-reads the file if it changed, however
  // recently it was checked.
  std::shared_ptr<const jwt::KeySet> Current(bool force = false);

 private:
  explicit ProviderKeys(std::string path) : path_(std::move(path)) {}
  absl::Status Reload();  // mu_ held

  const std::string path_;
  absl::Mutex mu_;
  std::shared_ptr<const jwt::KeySet> keys_ ABSL_GUARDED_BY(mu_);
  std::string fingerprint_ ABSL_GUARDED_BY(mu_);  // mtime and size
  absl::Time checked_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// A provider as an exchange uses it: from the proxy config (keys from its
// file) or from the policy bundle (keys in the bundle).
struct ResolvedProvider {
  config::IdentityProvider config;
  std::vector<std::string> environments;  // globs; empty: all
  ProviderKeys* file_keys = nullptr;      // config providers
  std::shared_ptr<const jwt::KeySet> keys;  // bundle providers
  std::shared_ptr<const jwt::KeySet> Keys(bool force) const {
    return file_keys != nullptr ? file_keys->Current(force) : keys;
  }
};
// What a bundle brings: its identity providers (keys parsed) and its
// service tokens by id.
struct BundleIdentities {
  std::vector<ResolvedProvider> providers;
  absl::flat_hash_map<std::string, warden::v1::ServiceToken> service_tokens;
};


class OidcAuthenticator : public Authenticator {
 public:
  // The policy bundle in force (null before the first), whose
  // identity_providers apply too; null when policies come from files.
  using BundleSource =
      std::function<std::shared_ptr<const warden::v1::PolicyBundle>()>;

  // The providers `listener` accepts from the proxy config (all configured
  // ones when it names none), each JWKS read now, failing with the
  // provider's name; plus, through `bundle`, those of the policy bundle.
  static absl::StatusOr<std::unique_ptr<OidcAuthenticator>> Create(
      const config::ProxyConfig& config, const config::Listener& listener,
      BundleSource bundle = nullptr);
  std::unique_ptr<AuthExchange> Begin(const AuthRequest& request) override;

  // For the exchange: the provider of `environment` whose issuer is
  // `issuer`, or null. Config providers first.
  // The result keeps its provider list alive while it is used.
  std::shared_ptr<const ResolvedProvider> Find(const std::string& issuer,
                                               const std::string& environment);

 private:
  // The bundle's providers and tokens, parsed once per bundle.
  std::shared_ptr<const BundleIdentities> BundleProviders();

 public:
  // A Warden service token (wdn_...) of the bundle in force for
  // `environment` / `database`: the token's record, or why not.
  absl::StatusOr<warden::v1::ServiceToken> FindServiceToken(
      absl::string_view token, const std::string& environment,
      const std::string& database);

 private:

  std::vector<std::unique_ptr<ProviderKeys>> file_keys_;
  std::vector<ResolvedProvider> configured_;
  BundleSource bundle_;
  absl::Mutex mu_;
  std::shared_ptr<const warden::v1::PolicyBundle> parsed_from_
      ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const BundleIdentities> from_bundle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_OIDC_AUTHENTICATOR_H_
