// ClientLogin: a client's way in, from its first packet to the moment
// Warden connects upstream for it, with no I/O: the session reads and
// writes the socket, this decides. In order:
//
//  1. Startup packets. An SSLRequest is answered 'S' and TLS starts when
//     the listener has it, 'N' otherwise; a second one, or bytes sent
//     behind it before the handshake (CVE-2021-23214), is a protocol
//     violation. A GSSENCRequest is declined ('N'); a CancelRequest is
//     handed back to the session. A StartupMessage needs TLS where the
//     listener requires it, an address not refused for failed logins, an
//     environment this proxy may record, no replication and, on a governed
//     proxy, parameters judged as the SETs they are (startup_params.h);
//     `_pq_.` options and minor versions above 3.0 are negotiated down
//     (NegotiateProtocolVersion).
//  2. The exchange with the listener's Authenticator, one
//     PasswordMessage-family message at a time (each at most
//     kMaxAuthMessageSize: nobody unauthenticated makes Warden buffer
//     megabytes).
//  3. Admission of the identity it proved: a name that is distinct and no
//     look-alike of another known user's, a policy bundle (governed), the
//     directory's word, a database of the listener's environment, and the
//     database role (identity mappings).
//  4. One AUTHENTICATION audit event per login, whatever refused it, and
//     SESSION_START for an admitted one; then Callbacks::OnLoggedIn, where
//     the session sends AuthenticationOk and connects upstream.
//
// Anything malformed or refused ends the session through Callbacks::Fail
// (FATAL, 08P01 for protocol violations); nothing is guessed.
//
// Not thread-safe: one per connection, on the session's loop thread.
// tests/unit/dataplane/session/client_login_test.cc plays each step with
// fake callbacks and a scripted Authenticator.
#ifndef WARDEN_DATAPLANE_SESSION_CLIENT_LOGIN_H_
#define WARDEN_DATAPLANE_SESSION_CLIENT_LOGIN_H_

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/login_failures.h"
#include "common/names.h"
#include "dataplane/config/config.h"
#include "dataplane/gate/gate.h"
#include "dataplane/pgwire/startup.h"
#include "dataplane/session/authenticator.h"
#include "dataplane/stages/directory_stage.h"
#include "dataplane/stages/stage.h"
#include "proto/warden/v1/audit.pb.h"
#include "proto/warden/v1/session.pb.h"

namespace warden::dataplane::session {

class ClientLogin {
 public:
  // Largest message accepted during authentication (as PostgreSQL's
  // PG_MAX_AUTH_TOKEN_LENGTH).
  static constexpr size_t kMaxAuthMessageSize = 65535;

  // What a login settled, for the rest of the session.
  struct Admission {
    // The client's name for its database, and the config's entry for it.
    std::string database_name;
    const config::Database* database = nullptr;
    // The startup parameters to pass on to the database (without user and
    // database), in the client's order.
    std::vector<std::pair<std::string, std::string>> startup_params;
    // The role Warden logs in to the database as (the service role, or the
    // one an identity mapping picked) and its password.
    std::string upstream_user;
    std::string upstream_password;
    // Governed sessions: the directory's word on the user, applied at
    // login; the first stage of the session's chain.
    std::unique_ptr<stages::DirectoryStage> directory;
    // For the session's Refusals (drawn at login: a proxy that cannot draw
    // random bytes refuses the login rather than a statement). Empty when
    // neither policy nor audit is on.
    std::string refusal_token;
  };

  // What a login asks of its session. The session implements it.
  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // Bytes for the client, in order (queued while its socket is full).
    virtual void SendToClient(absl::string_view bytes) = 0;
    // Ends the session: FATAL `sqlstate` `message` to the client when it
    // can still be told.
    virtual void Fail(absl::string_view sqlstate, absl::string_view message,
                      warden::v1::SessionEndReason reason) = 0;
    // The session has ended (a refusal, or the client went away while it
    // was being answered).
    virtual bool ended() const = 0;
    // 'S' has been sent: TLS starts on the client's connection with
    // `context`, and the next startup packet arrives through it.
    virtual void StartClientTls(SSL_CTX* context) = 0;
    // Whether the client's connection is encrypted, and the certificate
    // the client presented in its TLS handshake (PEM; "" when none).
    virtual bool ClientTls() const = 0;
    virtual std::string ClientCertificatePem() const = 0;
    // The connection is a CancelRequest for the key (`pid`, `secret`), not
    // a login: the session ends, and cancels what that key names.
    virtual void OnCancelRequest(int32_t pid, int32_t secret) = 0;
    // Starts an audit event of the session (its id, environment and
    // identity as they are now).
    virtual warden::v1::AuditEvent NewEvent(
        warden::v1::AuditEventKind kind) const = 0;
    // Records `event`; false when it is not on disk (the spool is full or
    // failing). True when audit is off.
    virtual bool Audit(warden::v1::AuditEvent event) = 0;
    // The identity is proven and its name is allowed (Context::identity
    // holds it): from here on the session's audit events are its
    // identity's to pay for (audit_budget.h).
    virtual void OnIdentityProven() = 0;
    // How long the proven identity must wait for its audit budget before
    // its login records anything (the spool is backlogged and the identity
    // spent its budget); nullopt: it may go on now.
    virtual std::optional<absl::Duration> LoginAuditWait() = 0;
    // Calls ResumeAdmission `delay` from now.
    virtual void ResumeLoginAfter(absl::Duration delay) = 0;
    // Admitted, its AUTHENTICATION and SESSION_START events recorded: the
    // session takes over what the login settled (Admission), sends
    // AuthenticationOk and connects upstream.
    virtual void OnLoggedIn(Admission admission) = 0;
  };

  // What a login reads. Pointers are not owned and outlive the login;
  // everything proxy-wide is read-only after the proxy starts (see
  // SharedState) apart from `login_failures`, which is thread-safe.
  struct Context {
    const config::Listener* listener = nullptr;
    // The listener's environment (the databases a client may name).
    const config::Environment* environment = nullptr;
    // The listener's authenticator.
    Authenticator* authenticator = nullptr;
    // The listener's TLS; null when TLS is disabled on it (an SSLRequest
    // is answered 'N').
    SSL_CTX* tls = nullptr;
    // Failed logins per client address, shared by every session.
    warden::LoginFailures* login_failures = nullptr;
    // How full the audit spool is (0 to 1; empty: audit off). Past half,
    // failed logins are only counted in summaries, not recorded each.
    std::function<double()> spool_fill;
    // Whether audit is on (sessions record events).
    bool recording = false;
    // With audit on, whether this proxy may record events of an
    // environment (its certificate covers it); null: anything goes.
    const std::function<absl::Status(const std::string& environment)>*
        may_record = nullptr;
    // Whether a policy is configured, and the policy gate in force (null
    // while the proxy waits for its first bundle).
    bool governed = false;
    std::function<std::shared_ptr<const gate::Gate>()> gate;
    // The config's users, folded and by skeleton (SharedState).
    const absl::flat_hash_set<std::string>* config_user_names = nullptr;
    const LookAlikeIndex* config_user_lookalikes = nullptr;
    // The client: "host:port" for logs, and the host, whose failed logins
    // count together.
    std::string peer_address;
    std::string peer_host;
    // The session's: who connected, written once the credentials held (the
    // session's audit events name `identity`, its stages judge `subject`).
    warden::v1::Identity* identity = nullptr;
    policy::engine::Subject* subject = nullptr;
    // For the directory stage built at login (governed sessions).
    stages::StageCallbacks* stage_callbacks = nullptr;
  };

  ClientLogin(Context context, Callbacks* callbacks);
  ~ClientLogin();
  ClientLogin(const ClientLogin&) = delete;
  ClientLogin& operator=(const ClientLogin&) = delete;

  // The client's bytes while it logs in (what the session has buffered,
  // from the start of a message). Before authentication: one startup
  // packet; during it: every complete authentication message there is.
  // Returns how many bytes were used; the rest waits for the next call (a
  // partial message; whatever follows a startup packet; what follows the
  // last authentication message, for the relay).
  //
  // Example: a client that sends SSLRequest on a listener without TLS gets
  // "N" and OnClientBytes returns 8; its StartupMessage, passed next,
  // begins the exchange (the Authenticator's first challenge is sent).
  size_t OnClientBytes(absl::string_view buf);

  // A login that waited for its identity's audit budget goes on (or waits
  // again); nothing for any other.
  void ResumeAdmission();

 private:
  enum class State {
    kStartup,    // reading a startup packet (maybe after TLS).
    kAuth,       // the authentication exchange.
    kThrottled,  // proven, waiting for the identity's audit budget.
    kDone,       // logged in or refused.
  };

  size_t OnStartupPacket(absl::string_view buf);
  size_t OnAuthMessages(absl::string_view buf);
  void HandleStartup(const pgwire::StartupMessage& startup);
  void HandleAuthStep(AuthStep step);
  // The identity is proven: admits it (or refuses it), `reply` being the
  // authenticator's last message for the client.
  void Admit(std::string reply);
  void FailProtocol(absl::string_view message);
  // The claimed user name as recorded (capped).
  std::string ClaimedUser() const;
  void Fail(absl::string_view sqlstate, absl::string_view message,
            warden::v1::SessionEndReason reason);
  // A known name (the config's users, the directory's) that `user` looks
  // like without being one itself; "" when none.
  std::string LookAlikeOfKnownName(absl::string_view user) const;
  // RefuseIdentity turns away an identity that authenticated but may not
  // connect (deactivated, unmapped): an AUTHENTICATION failure event with
  // `reason`, then FATAL 28000 "Warden: <reason>".
  void RefuseIdentity(const std::string& reason);
  // RefuseLogin: the same for any refusal after the credentials held
  // (`message` to the client as FATAL `sqlstate`, `reason` recorded): each
  // login has exactly one AUTHENTICATION event.
  void RefuseLogin(const char* sqlstate, const std::string& message,
                   const std::string& reason);
  // The AUTHENTICATION event of a login whose credentials held.
  warden::v1::AuditEvent LoginEvent(bool success, const std::string& reason);

  const Context context_;
  Callbacks* const callbacks_;
  State state_ = State::kStartup;
  bool tls_negotiated_ = false;  // an SSLRequest was answered.
  std::string user_;             // as the startup packet claims it.
  std::string held_reply_;       // Admit's, while kThrottled.
  std::unique_ptr<AuthExchange> auth_;
  Admission admission_;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_CLIENT_LOGIN_H_
