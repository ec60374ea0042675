// UpstreamConnector: how Warden reaches a client's database once the
// client logged in, up to its own login there (UpstreamLogin), with no
// I/O. The session opens the sockets and drives TLS; this says where to
// connect and in which order, what to send first, what the upstream's
// answer to SSLRequest means, and what each failure tells the client:
//
// - a literal address is tried as it is; a host name goes to the
//   server's resolver first (LiteralAddresses() is nullopt), and every
//   address it returns is tried in order (NextAddress) until a connect
//   succeeds;
// - with TLS configured (tls_mode other than disable) an SSLRequest goes
//   first, and only 'S' is acceptable (OnSslAnswer): TLS is then started
//   with the upstream's context, the host name verified for verify-full;
//   anything else ends the session (fail closed, never plaintext);
// - then the startup message: Warden's database role (the identity
//   mapping's, or the service user), the upstream's database name and the
//   client's accepted parameters.
//
// Not thread-safe: one per session, on its loop thread.
#ifndef WARDEN_DATAPLANE_SESSION_UPSTREAM_CONNECTOR_H_
#define WARDEN_DATAPLANE_SESSION_UPSTREAM_CONNECTOR_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "dataplane/config/config.h"
#include "proto/warden/v1/session.pb.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace warden::dataplane::session {

class UpstreamConnector {
 public:
  using Address = std::pair<std::string, uint16_t>;

  // `upstream` (the database's, outliving this); `tls`: its TLS client
  // context (null when TLS is disabled); `user`: the database role Warden
  // logs in as; `params`: the client's startup parameters to pass on.
  UpstreamConnector(const config::Upstream* upstream, SSL_CTX* tls,
                    std::string user,
                    std::vector<std::pair<std::string, std::string>> params)
      : upstream_(upstream),
        tls_(tls),
        user_(std::move(user)),
        params_(std::move(params)) {}

  // Why the connection failed: the session ends with FATAL `sqlstate`
  // `message`, the side at fault `reason`.
  struct Failure {
    std::string sqlstate;
    std::string message;
    warden::v1::SessionEndReason reason =
        warden::v1::SESSION_END_REASON_UNSPECIFIED;
  };

  // The upstream's host when it is a literal address (connect at once);
  // nullopt for a host name, which the resolver looks up first.
  std::optional<std::vector<Address>> LiteralAddresses() const;
  const config::Upstream& upstream() const { return *upstream_; }

  // The addresses to try, in order (the literal one or the resolver's).
  void SetAddresses(std::vector<Address> addresses) {
    addresses_ = std::move(addresses);
    next_ = 0;
  }
  // The next address to try, each once; null when none is left.
  const Address* NextAddress() {
    return next_ < addresses_.size() ? &addresses_[next_++] : nullptr;
  }
  bool has_next() const { return next_ < addresses_.size(); }

  // The connection stands: what goes first. With TLS configured, an
  // SSLRequest (wants_tls(): wait for its one-byte answer); otherwise the
  // startup message.
  bool wants_tls() const;
  std::string FirstMessage() const;
  // The startup message (after TLS, when configured).
  std::string StartupMessage() const;

  // The upstream's answer to the SSLRequest (the bytes read so far, at
  // least one): start TLS with `context`, verifying `verify_host` (empty:
  // not verified), and consume one byte; or fail.
  //
  // Example: OnSslAnswer("N") fails ("the upstream database refused TLS
  // ..."), as does "S" followed by more bytes (nothing may come before
  // the handshake).
  struct SslAnswer {
    std::optional<Failure> failure;
    SSL_CTX* context = nullptr;
    std::string verify_host;
  };
  SslAnswer OnSslAnswer(absl::string_view buf) const;

  // The failures, worded for the client.
  Failure LookupFailed(const absl::Status& status) const;
  // No address took a connect (`error` 0), or the last one's connect
  // failed with errno `error`.
  Failure ConnectFailed(int error) const;
  Failure TlsFailed(const std::string& error) const;
  Failure TimedOut() const;
  // A TLS session could not be set up on the socket (Warden's fault).
  static Failure TlsNotStarted(const absl::Status& status);

 private:
  const config::Upstream* const upstream_;
  SSL_CTX* const tls_;
  const std::string user_;
  const std::vector<std::pair<std::string, std::string>> params_;
  std::vector<Address> addresses_;
  size_t next_ = 0;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_UPSTREAM_CONNECTOR_H_
