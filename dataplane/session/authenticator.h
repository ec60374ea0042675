// The seam between a session and whatever proves who a client is.
//
// A session asks an Authenticator to Begin() an exchange for the startup
// packet it received, sends what the exchange replies, and feeds it every
// PasswordMessage-family body ('p': password, SASLInitialResponse,
// SASLResponse) until the exchange succeeds or fails. Today's implementation
// checks users from the proxy config (SCRAM-SHA-256, or cleartext over TLS);
// identity providers (OIDC tokens sent as the password, client certificates,
// agent service tokens) plug in as further Authenticators without the
// session changing.
#ifndef WARDEN_DATAPLANE_SESSION_AUTHENTICATOR_H_
#define WARDEN_DATAPLANE_SESSION_AUTHENTICATOR_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/warden/v1/session.pb.h"
#include "dataplane/pgwire/sqlstate.h"

namespace warden::dataplane::session {

struct AuthRequest {
  std::string user;         // "user" from the startup packet.
  std::string database;     // "database" from the startup packet.
  std::string environment;  // the listener's environment.
  bool tls = false;         // the client connection is encrypted.
  // The certificate the client presented in the TLS handshake (PEM), which
  // proves it holds the key; its chain is not yet verified. Empty: none.
  std::string peer_certificate_pem;
};

struct AuthStep {
  enum class State { kContinue, kSuccess, kFailure };
  State state = State::kContinue;
  // Complete backend messages to send to the client (e.g. AuthenticationSASL,
  // SASLContinue, SASLFinal). The session itself sends AuthenticationOk.
  std::string reply;
  // On kFailure: the reason to log and audit. The client sees `client_error`
  // (deliberately vague, as PostgreSQL's "password authentication failed").
  absl::Status error;
  std::string client_sqlstate = pgwire::kInvalidPassword;
  std::string client_error;
  // How the client tried to authenticate, for the audit event (e.g.
  // "oidc:okta"); empty: the listener's method.
  std::string method;
  // On kSuccess: who connected.
  warden::v1::Identity identity;
  // Whether the identity provider's directory (SCIM: groups, attributes,
  // deactivation) speaks for this identity. Not for the proxy config's
  // own users (break-glass accounts), unless configured: a SCIM token
  // must not lock them out or hand them groups. An administrator's hold
  // reaches them either way.
  bool provider_identity = true;
  // When the credential was issued, for one that is dated (a token's iat,
  // a certificate's notBefore): a directory name reused since then
  // (DirectoryEntry.name_reused_unix_ms) refuses it. Unset for passwords
  // and service tokens.
  std::optional<absl::Time> credential_issued;
};

// One authentication conversation. Not thread-safe; owned by one session.
class AuthExchange {
 public:
  virtual ~AuthExchange() = default;
  // Start returns the first challenge (kContinue) or an immediate verdict.
  virtual AuthStep Start() = 0;
  // OnMessage takes the body of a 'p' message.
  virtual AuthStep OnMessage(absl::string_view body) = 0;
};

// Thread-safe: one Authenticator serves every worker.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual std::unique_ptr<AuthExchange> Begin(const AuthRequest& request) = 0;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_AUTHENTICATOR_H_
