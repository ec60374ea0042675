// Authenticates clients by an OpenID Connect token sent as the password
// (listeners with `auth: oidc`, which require TLS): psql, JDBC and every
// driver can send one without plugins. The token must verify against its
// provider's keys (common/jwt: RS256/ES256 only, issuer, audience, expiry
// with bounded skew, lifetime), carry the provider's required claims, and
// name the user the client connects as. Its claims give the identity: the
// user claim (email by default), groups from the configured claims, and
// the provider's kind (human, agent, service).
#ifndef WARDEN_DATAPLANE_SESSION_OIDC_AUTHENTICATOR_H_
#define WARDEN_DATAPLANE_SESSION_OIDC_AUTHENTICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/jwt.h"
#include "dataplane/config/config.h"
#include "dataplane/session/authenticator.h"

namespace warden::session {

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

class OidcAuthenticator : public Authenticator {
 public:
  // The providers `listener` accepts (all configured ones when it names
  // none); reads each provider's JWKS, failing with the provider's name.
  static absl::StatusOr<std::unique_ptr<OidcAuthenticator>> Create(
      const config::ProxyConfig& config, const config::Listener& listener);
  std::unique_ptr<AuthExchange> Begin(const AuthRequest& request) override;

  struct Provider {
    const config::IdentityProvider* config;
    std::unique_ptr<ProviderKeys> keys;
  };
  // For the exchange: the provider whose issuer is `issuer`, or null.
  Provider* Find(const std::string& issuer);

 private:
  std::vector<Provider> providers_;
};

}  // namespace warden::session

#endif  // WARDEN_DATAPLANE_SESSION_OIDC_AUTHENTICATOR_H_
