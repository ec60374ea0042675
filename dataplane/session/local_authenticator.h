// Authenticates clients against the users listed in the proxy config.
#ifndef WARDEN_DATAPLANE_SESSION_LOCAL_AUTHENTICATOR_H_
#define WARDEN_DATAPLANE_SESSION_LOCAL_AUTHENTICATOR_H_

#include <string>

#include "dataplane/config/config.h"
#include "dataplane/session/authenticator.h"

namespace warden::dataplane::session {

// LocalAuthenticator speaks SCRAM-SHA-256 (or, on listeners configured with
// `auth: password`, which require TLS, a cleartext password checked against
// the same verifier). Unknown users get a mock SCRAM exchange, so a client
// cannot probe which user names exist. Thread-safe (immutable).
class LocalAuthenticator : public Authenticator {
 public:
  // `config` must outlive this; `mock_secret` seeds mock salts.
  LocalAuthenticator(const config::ProxyConfig* config,
                     config::ClientAuthMethod method, std::string mock_secret);
  std::unique_ptr<AuthExchange> Begin(const AuthRequest& request) override;

 private:
  const config::ProxyConfig* config_;
  config::ClientAuthMethod method_;
  std::string mock_secret_;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_LOCAL_AUTHENTICATOR_H_
