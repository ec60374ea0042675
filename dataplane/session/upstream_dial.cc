#include "dataplane/session/upstream_dial.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <utility>

#include "dataplane/net/address.h"
#include "dataplane/net/conn.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::session {

UpstreamDial::UpstreamDial(Callbacks* callbacks, Duplex::Peer* peer,
                           const config::Upstream* upstream, SSL_CTX* tls,
                           Login login, std::string log_name)
    : callbacks_(callbacks),
      peer_(peer),
      connector_(upstream, tls, login.user, std::move(login.params)),
      login_(std::move(login)),
      log_name_(std::move(log_name)) {}

UpstreamDial::~UpstreamDial() = default;

void UpstreamDial::Start() {
  if (auto literal = connector_.LiteralAddresses(); literal.has_value()) {
    connector_.SetAddresses(*std::move(literal));
    return ConnectNext();
  }
  // A host name: getaddrinfo blocks, so the session's resolver looks it up
  // off the loop; the session's connect timer bounds the wait.
  callbacks_->Resolve(connector_.upstream().host, connector_.upstream().port);
}

void UpstreamDial::OnResolved(absl::StatusOr<net::Addresses> addresses) {
  if (failed_ || state_ != State::kConnect) return;
  if (!addresses.ok()) return Failed(connector_.LookupFailed(addresses.status()));
  connector_.SetAddresses(*std::move(addresses));
  ConnectNext();
}

void UpstreamDial::ConnectNext() {
  while (const UpstreamConnector::Address* address =
             connector_.NextAddress()) {
    const auto& [host, port] = *address;
    const int fd = net::StartConnect(host, port);
    if (fd < 0) continue;
    peer_->conn = std::make_unique<net::Conn>(fd);
    callbacks_->WatchUpstream(host, port);
    return;
  }
  Failed(connector_.ConnectFailed(0));
}

bool UpstreamDial::OnEvents(uint32_t events) {
  switch (state_) {
    case State::kConnect:
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) OnConnected();
      return true;
    case State::kTls:
      DriveTls();
      return true;
    default:
      return false;
  }
}

bool UpstreamDial::StopAfterRead() {
  if (state_ != State::kTls) return false;
  DriveTls();
  return true;
}

void UpstreamDial::OnConnected() {
  int error = 0;
  socklen_t len = sizeof(error);
  getsockopt(peer_->conn->fd(), SOL_SOCKET, SO_ERROR, &error, &len);
  if (error == 0) {
    // An SSLRequest first when TLS is configured, else the startup.
    state_ = connector_.wants_tls() ? State::kSsl : State::kLogin;
    callbacks_->SendUpstream(connector_.FirstMessage());
    return callbacks_->ReadUpstream();
  }
  peer_->conn->Close();
  peer_->conn.reset();
  if (connector_.has_next()) return ConnectNext();
  Failed(connector_.ConnectFailed(error));
}

size_t UpstreamDial::OnSslAnswer(absl::string_view buf) {
  const UpstreamConnector::SslAnswer answer = connector_.OnSslAnswer(buf);
  if (answer.failure.has_value()) {
    Failed(*answer.failure);
    return 0;
  }
  const absl::Status started =
      peer_->conn->StartTls(answer.context, false, answer.verify_host);
  if (!started.ok()) {
    Failed(UpstreamConnector::TlsNotStarted(started));
    return 0;
  }
  state_ = State::kTls;
  return 1;
}

void UpstreamDial::DriveTls() {
  const net::IoOutcome r = peer_->conn->Handshake();
  switch (r.result) {
    case net::IoResult::kOk:
      state_ = State::kLogin;
      callbacks_->SendUpstream(connector_.StartupMessage());
      return callbacks_->ReadUpstream();
    case net::IoResult::kWantRead:
    case net::IoResult::kWantWrite:
      return;  // the next edge continues the handshake.
    default:
      Failed(connector_.TlsFailed(r.error));
  }
}

bool UpstreamDial::OnLoginMessage(char type, absl::string_view body) {
  if (upstream_login_ == nullptr) {
    upstream_login_ = std::make_unique<UpstreamLogin>(
        connector_.upstream(), login_.user, login_.password, login_.database);
  }
  UpstreamLogin::Step step = upstream_login_->OnMessage(type, body);
  switch (step.state) {
    case UpstreamLogin::Step::State::kContinue:
      if (!step.reply.empty()) callbacks_->SendUpstream(step.reply);
      return true;
    case UpstreamLogin::Step::State::kDone:
      upstream_login_.reset();
      state_ = State::kDone;
      return true;
    case UpstreamLogin::Step::State::kFailed:
      spdlog::warn("session {}: upstream login failed: {} {}", log_name_,
                   step.sqlstate, step.message);
      Failed({step.sqlstate, step.message,
              warden::v1::SESSION_END_REASON_UPSTREAM});
      return false;
  }
  return false;
}

void UpstreamDial::Failed(const UpstreamConnector::Failure& failure) {
  failed_ = true;
  callbacks_->DialFailed(failure);
}

}  // namespace warden::dataplane::session
