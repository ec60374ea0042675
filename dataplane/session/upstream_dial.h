// UpstreamDial: a session's way to its database, from the first connect
// to Warden's own login there. It owns the upstream side's phases, on the
// upstream peer of the session's Duplex:
//
//   kConnect  the host resolved (by the server's resolver, through the
//             session) unless it is a literal address, then each address
//             tried in turn until a connect takes (UpstreamConnector);
//   kSsl      with TLS configured, waiting for the one-byte answer to
//             SSLRequest (only 'S' goes on: never plaintext);
//   kTls      the TLS handshake, driven by the socket's events;
//   kLogin    Warden's login with the service credentials (UpstreamLogin),
//             one validated backend message at a time;
//   kDone     AuthenticationOk accepted: the session relays from here.
//
// The session routes the upstream's events and bytes here until kDone;
// every failure goes to Callbacks::DialFailed, worded for the client, and
// the dial does nothing more.
//
// Not thread-safe: one per session, on its loop thread.
#ifndef WARDEN_DATAPLANE_SESSION_UPSTREAM_DIAL_H_
#define WARDEN_DATAPLANE_SESSION_UPSTREAM_DIAL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/config/config.h"
#include "dataplane/net/resolver.h"
#include "dataplane/session/duplex.h"
#include "dataplane/session/upstream_connector.h"
#include "dataplane/session/upstream_login.h"

namespace warden::dataplane::session {

class UpstreamDial {
 public:
  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // A connect to host:port started on the upstream peer's socket: watch
    // it (its completion is an EPOLLOUT). False: the session failed.
    virtual bool WatchUpstream(const std::string& host, uint16_t port) = 0;
    virtual void SendUpstream(absl::string_view bytes) = 0;
    // Read the upstream now (what it sends goes to OnBytes/OnLoginMessage).
    virtual void ReadUpstream() = 0;
    // Looks `host` up off the loop and calls OnResolved on this loop,
    // unless the session ended meanwhile.
    virtual void Resolve(const std::string& host, uint16_t port) = 0;
    // The database cannot be reached or refused Warden: the session ends.
    virtual void DialFailed(const UpstreamConnector::Failure& failure) = 0;
  };

  enum class State { kConnect, kSsl, kTls, kLogin, kDone };

  // Who Warden logs in as, and where (the client's admission).
  struct Login {
    std::string user;
    std::string password;
    std::string database;  // the client's name for it, for messages
    std::vector<std::pair<std::string, std::string>> params;
  };

  // `upstream` outlives this; `tls`: its client context (null: TLS
  // disabled); `peer`: the session's upstream peer; `log_name`: the
  // client's address, for log lines.
  UpstreamDial(Callbacks* callbacks, Duplex::Peer* peer,
               const config::Upstream* upstream, SSL_CTX* tls, Login login,
               std::string log_name);
  ~UpstreamDial();

  State state() const { return state_; }
  // Whether the upstream's bytes are wanted now (kSsl, kLogin).
  bool reading() const {
    return state_ == State::kSsl || state_ == State::kLogin;
  }

  // Connects (a literal address) or asks the session to resolve the host.
  void Start();
  void OnResolved(absl::StatusOr<net::Addresses> addresses);
  // The upstream socket's events while connecting or in the TLS
  // handshake: true when they were the dial's (the session passes the
  // others to Duplex).
  bool OnEvents(uint32_t events);
  // After a read of the upstream: true when the TLS handshake takes the
  // socket over (the read loop stops).
  bool StopAfterRead();
  // kSsl: the upstream's bytes so far; how many were used (0: failed).
  size_t OnSslAnswer(absl::string_view buf);
  // kLogin: one validated backend message. False: the dial failed.
  bool OnLoginMessage(char type, absl::string_view body);
  // The session's connect timer expired.
  UpstreamConnector::Failure TimedOut() const { return connector_.TimedOut(); }

 private:
  void ConnectNext();
  void OnConnected();
  void DriveTls();
  void Failed(const UpstreamConnector::Failure& failure);

  Callbacks* const callbacks_;
  Duplex::Peer* const peer_;
  UpstreamConnector connector_;
  Login login_;
  const std::string log_name_;
  std::unique_ptr<UpstreamLogin> upstream_login_;
  State state_ = State::kConnect;
  bool failed_ = false;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_UPSTREAM_DIAL_H_
