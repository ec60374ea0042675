#include "dataplane/session/session.h"

#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "common/audit_bounds.h"
#include "common/proto_time.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/names.h"
#include "dataplane/net/address.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/framing.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/session/upstream_login.h"
#include "dataplane/session/audit_writes.h"
#include "dataplane/stages/directory_stage.h"
#include "dataplane/stages/policy_stage.h"
#include "policy/sql/normalize.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::session {
namespace {

using warden::v1::SessionEndReason;

constexpr int kLingerMs = 2000;

// About what the next client message records: a Query's or Parse's length
// (its text is recorded, up to an event's limit), read from its header
// before the whole message has arrived; 0 for the others.
size_t StatementBytes(absl::string_view buf) {
  if (buf.empty() || (buf[0] != 'Q' && buf[0] != 'P')) return 0;
  // (No bound here: FrontendRelay refuses an oversized message.)
  const pgwire::Frame frame =
      pgwire::NextMessage(buf, std::numeric_limits<size_t>::max());
  // kNeedMore says the whole size once the length is read; 0 before.
  if (frame.status == pgwire::FrameStatus::kError || frame.size <= 5) return 0;
  return std::min<size_t>(frame.size - 5, audit_bounds::Limits().max_event);
}

const char* ReasonName(SessionEndReason r) {
  switch (r) {
    case warden::v1::SESSION_END_REASON_CLIENT:
      return "client";
    case warden::v1::SESSION_END_REASON_UPSTREAM:
      return "upstream";
    case warden::v1::SESSION_END_REASON_POLICY:
      return "policy";
    case warden::v1::SESSION_END_REASON_INTERNAL:
      return "internal";
    default:
      return "unspecified";
  }
}

}  // namespace

Session::Session(SharedState* shared, const config::Listener* listener,
                 int client_fd, net::EventLoop* loop, SessionMap* live)
    : shared_(shared),
      loop_(loop),
      live_(live),
      listener_(listener),
      environment_(shared->config->FindEnvironment(listener->environment)) {
  started_at_ = absl::Now();
  if (auto id = crypto::RandomBytes(8); id.ok()) {
    session_id_ = crypto::HexEncode(*id);
  }
  if (const std::optional<net::Peer> peer = net::PeerOf(client_fd)) {
    peer_address_ = absl::StrCat(peer->host, ":", peer->port);
    peer_host_ = peer->host;
  }
  duplex_.client().conn = std::make_unique<net::Conn>(client_fd);
  shared_->client_connections.fetch_add(1, std::memory_order_relaxed);
  SessionAudit::Context audit;
  audit.recorder = shared_->recorder;
  audit.backlogged_session_rate = shared_->audit_backlogged_session_rate;
  audit.sessions_throttled = &shared_->audit_sessions_throttled;
  audit.environment = listener_->environment;
  audit.session_id = session_id_;
  audit.identity = &identity_;
  audit.peer_address = peer_address_;
  audit_ = std::make_unique<SessionAudit>(
      std::move(audit), static_cast<SessionAudit::Callbacks*>(this));
  ClientLogin::Context login;
  login.listener = listener_;
  login.environment = environment_;
  login.authenticator = shared_->authenticators.at(listener_->name).get();
  if (const auto it = shared_->listener_tls.find(listener_->name);
      it != shared_->listener_tls.end()) {
    login.tls = it->second.get();
  }
  login.login_failures = &shared_->login_failures;
  if (audit::AuditSink* recorder = shared_->recorder) {
    login.spool_fill = [recorder] { return recorder->Fill(); };
  }
  login.recording = shared_->recorder != nullptr;
  login.may_record = &shared_->may_record;
  login.governed = shared_->governed;
  login.gate = [shared] { return shared->CurrentGate(); };
  login.config_user_names = &shared_->config_user_names;
  login.config_user_lookalikes = &shared_->config_user_lookalikes;
  login.peer_address = peer_address_;
  login.peer_host = peer_host_;
  login.identity = &identity_;
  login.subject = &subject_;
  login.stage_callbacks = static_cast<stages::StageCallbacks*>(this);
  client_login_ = std::make_unique<ClientLogin>(
      std::move(login), static_cast<ClientLogin::Callbacks*>(this));
}

Session::~Session() {
  EndPendingLogin();
  if (timer_ != 0) loop_->CancelTimer(timer_);
  shared_->client_connections.fetch_sub(1, std::memory_order_relaxed);
}

void Session::Start() {
  live_->emplace(this, shared_from_this());
  ArmTimer(shared_->config->proxy.startup_timeout_ms);
  if (!Register(Side::kClient)) return;
  // One address's connections that have not logged in yet are bounded, so
  // its idle sockets cannot take every client slot (red team).
  pending_login_ = shared_->pending_logins.Add(
      peer_host_, shared_->config->proxy.max_pending_logins_per_address);
  if (!pending_login_) {
    spdlog::warn("session {}: refused: {} connections from {} have not "
                 "logged in yet (proxy.max_pending_logins_per_address)",
                 peer_address_,
                 shared_->config->proxy.max_pending_logins_per_address,
                 peer_host_);
    Fail(pgwire::kTooManyConnections,
         "Warden: too many connections from this address that have not "
         "logged in yet; try again later",
         warden::v1::SESSION_END_REASON_POLICY);
  }
}

bool Session::Register(Side s) {
  const absl::Status watched =
      loop_->Watch(peer(s).conn->fd(), &peer(s).watcher);
  if (!watched.ok()) {
    spdlog::warn("session {}: {}", peer_address_,
                 std::string(watched.message()));
    if (s == Side::kClient) {
      CloseClient();
      Finish(warden::v1::SESSION_END_REASON_INTERNAL, "cannot watch socket");
    } else {
      Fail(pgwire::kInternalError, "cannot watch the upstream socket",
           warden::v1::SESSION_END_REASON_INTERNAL);
    }
    return false;
  }
  return true;
}

void Session::MaybeRelease() {
  if (released_ || phase_ != Phase::kClosed || duplex_.client().open() ||
      duplex_.upstream().open()) {
    return;
  }
  released_ = true;
  if (timer_ != 0) {
    loop_->CancelTimer(timer_);
    timer_ = 0;
  }
  // Destroyed after the current batch of events, which may still name it.
  SessionMap* live = live_;
  Session* self = this;
  loop_->Defer([live, self] { live->erase(self); });
}

// ---------------------------------------------------------------------------
// Event plumbing.

void Session::OnEvents(Side s, uint32_t events) {
  Duplex::Peer& p = peer(s);
  if (!p.open()) return;
  const bool writable = events & (EPOLLOUT | EPOLLERR | EPOLLHUP);
  if (s == Side::kUpstream && phase_ == Phase::kUpstreamConnect) {
    if (writable) OnUpstreamConnectEvent();
    return;
  }
  if ((s == Side::kClient && phase_ == Phase::kClientTls) ||
      (s == Side::kUpstream && phase_ == Phase::kUpstreamTls)) {
    if (s == Side::kClient) {
      DriveClientHandshake();
    } else {
      DriveUpstreamHandshake();
    }
    return;
  }
  if (s == Side::kClient && phase_ == Phase::kRelay && chain_.holding() &&
      (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    // The client hung up while a stage holds its statement (it is not read
    // meanwhile, so this edge is all it gets): nobody waits for the answer,
    // and the statement is withdrawn as a cancel would (red team pass 11:
    // held statements ran once acknowledged, after their clients left).
    spdlog::info("session {}: the client left while its statement was held",
                 peer_address_);
    return PeerLost(Side::kClient, /*eof=*/true, "");
  }
  duplex_.OnReady(s, events);
}

bool Session::MayRead(Side s) const {
  if (phase_ == Phase::kClosed) return false;
  if (s == Side::kClient) {
    return phase_ == Phase::kLogin ||
           (phase_ == Phase::kRelay && backend_.ready() && !chain_.holding() &&
            !audit_->throttled());
  }
  return phase_ == Phase::kUpstreamSsl || phase_ == Phase::kUpstreamAuth ||
         phase_ == Phase::kRelay;
}

bool Session::MayReadMore(Side s) {
  // Too many unanswered executions: resumed by answers.
  return s != Side::kClient || correlator_.MayRead();
}

void Session::DeferRead(Side s) {
  loop_->Defer([self = shared_from_this(), s] { self->ReadLoop(s); });
}

size_t Session::OnBytes(Side s, absl::string_view buf) {
  if (s == Side::kUpstream) return ProcessUpstream(buf);
  return phase_ == Phase::kLogin ? ProcessLogin(buf) : ProcessClient(buf);
}

bool Session::StopAfterRead(Side s) {
  if (phase_ == Phase::kClientTls && s == Side::kClient) {
    DriveClientHandshake();
    return true;
  }
  if (phase_ == Phase::kUpstreamTls && s == Side::kUpstream) {
    DriveUpstreamHandshake();
    return true;
  }
  return false;
}

void Session::PeerLost(Side s, bool eof, const std::string& error) {
  if (s == Side::kClient) {
    if (!eof) spdlog::debug("session {}: client {}", peer_address_, error);
    CloseUpstream(/*cancel_if_busy=*/true);
    CloseClient();
    Finish(warden::v1::SESSION_END_REASON_CLIENT,
           eof ? "client closed the connection" : error);
  } else if (phase_ == Phase::kRelay && backend_.fatal()) {
    // The upstream already told the client why (e.g. 57P01).
    CloseUpstream(false);
    duplex_.client().close_after_flush = true;
    Flush(Side::kClient);
    Finish(warden::v1::SESSION_END_REASON_UPSTREAM,
           "upstream ended the session with a FATAL error");
  } else {
    Fail(pgwire::kConnectionFailure,
         phase_ == Phase::kRelay
             ? "lost the connection to the upstream database"
             : "the upstream database closed the connection during startup",
         warden::v1::SESSION_END_REASON_UPSTREAM);
  }
}

void Session::ArmTimer(int ms) {
  if (timer_ != 0) loop_->CancelTimer(timer_);
  std::weak_ptr<Session> weak = weak_from_this();
  timer_ = loop_->AddTimer(std::chrono::milliseconds(ms), [weak] {
    if (auto self = weak.lock()) {
      self->timer_ = 0;
      self->OnTimer();
    }
  });
}

void Session::OnTimer() {
  switch (phase_) {
    case Phase::kLogin:
    case Phase::kClientTls:
      Fail(pgwire::kQueryCanceled, "canceling authentication due to timeout",
           warden::v1::SESSION_END_REASON_CLIENT);
      return;
    case Phase::kUpstreamConnect:
    case Phase::kUpstreamSsl:
    case Phase::kUpstreamTls:
    case Phase::kUpstreamAuth:
      Fail(connector_->TimedOut());
      return;
    case Phase::kRelay:
      if (!backend_.ready()) {
        Fail(pgwire::kConnectionFailure,
             "timed out waiting for the upstream database to become ready",
             warden::v1::SESSION_END_REASON_UPSTREAM);
      }
      return;
    case Phase::kClosed:
      // Linger expired: a client that does not read its error is dropped.
      if (duplex_.client().open()) duplex_.client().conn->Close();
      if (duplex_.upstream().open()) duplex_.upstream().conn->Close();
      MaybeRelease();
      return;
  }
}

// ---------------------------------------------------------------------------
// Client startup and authentication.

size_t Session::ProcessLogin(absl::string_view buf) {
  const size_t used = client_login_->OnClientBytes(buf);
  // Logged in (connecting upstream) or ended: the handshake's state goes.
  if (phase_ != Phase::kLogin && phase_ != Phase::kClientTls) {
    client_login_.reset();
  }
  return used;
}

void Session::StartClientTls(SSL_CTX* context) {
  if (duplex_.client().pending() > 0 || !duplex_.client().open()) return;
  auto status = duplex_.client().conn->StartTls(context, true, "");
  if (!status.ok()) {
    return Fail(pgwire::kInternalError, status.message(),
                warden::v1::SESSION_END_REASON_INTERNAL);
  }
  phase_ = Phase::kClientTls;
}

void Session::OnCancelRequest(int32_t pid, int32_t secret) {
  const auto target = shared_->cancels.Lookup(pid, secret);
  Finish(warden::v1::SESSION_END_REASON_CLIENT, "cancel request");
  if (target) {
    spdlog::debug("session {}: cancel for upstream pid {}", peer_address_,
                  target->upstream_pid);
    // A statement Warden holds never reached the backend: its session
    // withdraws it; what runs upstream is cancelled there.
    if (target->notify_session) target->notify_session();
    // The requester's connection closes once the upstream has taken the
    // cancel, as PostgreSQL's own postmaster behaves.
    SendCancel(loop_, *target,
               [self = shared_from_this()] { self->CloseClient(); });
  } else {
    spdlog::debug("session {}: cancel request for unknown key", peer_address_);
    CloseClient();
  }
}

void Session::OnIdentityProven() {
  if (shared_->audit_backlogged_session_rate > 0 &&
      shared_->recorder != nullptr) {
    audit_->set_window(
        shared_->audit_windows.For(FoldName(identity_.user()), absl::Now()));
  }
}

std::optional<absl::Duration> Session::LoginAuditWait() {
  return audit_->Wait();
}

void Session::ResumeLoginAfter(absl::Duration delay) {
  std::weak_ptr<Session> weak = weak_from_this();
  loop_->AddTimer(std::chrono::milliseconds(absl::ToInt64Milliseconds(delay)),
                  [weak] {
                    auto self = weak.lock();
                    if (!self || self->phase_ != Phase::kLogin) return;
                    self->client_login_->ResumeAdmission();
                  });
}

void Session::OnLoggedIn(ClientLogin::Admission admission) {
  admission_ = std::move(admission);
  refusals_.set_fallback_token(std::move(admission_.refusal_token));
  audit_session_started_ = shared_->recorder != nullptr;
  BuildChain();
  std::string ok;
  pgwire::WriteAuthenticationOk(&ok);
  Send(Side::kClient, ok);
  spdlog::info("session {}: {} authenticated ({}) for {}/{}", peer_address_,
               identity_.user(), identity_.auth_method(), environment_->name,
               admission_.database_name);
  ConnectUpstream();
}

void Session::DriveClientHandshake() {
  const net::IoOutcome r = duplex_.client().conn->Handshake();
  switch (r.result) {
    case net::IoResult::kOk:
      phase_ = Phase::kLogin;
      ReadLoop(Side::kClient);
      return;
    case net::IoResult::kWantRead:
    case net::IoResult::kWantWrite:
      return;  // the next edge continues the handshake.
    default:
      spdlog::info("session {}: client TLS handshake failed: {}", peer_address_,
                   r.error.empty() ? "closed" : r.error);
      CloseClient();
      Finish(warden::v1::SESSION_END_REASON_CLIENT, "TLS handshake failed");
  }
}

// ---------------------------------------------------------------------------
// Relay, client to upstream.

size_t Session::ProcessClient(absl::string_view buf) {
  // Sync audit: the head message waits for the control plane; a session
  // over its audit budget waits for its next second.
  if (chain_.holding() || audit_->throttled()) return 0;
  size_t pos = 0, forward_from = 0;
  bool terminate = false;
  // One policy snapshot for the whole batch (see SharedState::CurrentGate).
  const std::shared_ptr<const gate::Gate> gate =
      shared_->governed && phase_ == Phase::kRelay ? shared_->CurrentGate()
                                                   : nullptr;
  // One clock reading for the messages of this read (Now()).
  now_ = absl::InfinitePast();
  while (pos < buf.size() && phase_ != Phase::kClosed) {
    if (phase_ == Phase::kRelay &&
        audit_->Throttled(StatementBytes(buf.substr(pos)))) {
      break;
    }
    // What the message means (FrontendRelay); the upstream gets it, or
    // what replaces it, in order with the messages before it.
    FrontendRelay::Step step = frontend_.OnMessage(
        buf.substr(pos), gate.get(), phase_ == Phase::kRelay);
    if (step.action == FrontendRelay::Step::Action::kNeedMore) break;
    if (step.replacement.has_value()) {
      Send(Side::kUpstream, buf.substr(forward_from, pos - forward_from));
      Send(Side::kUpstream, *step.replacement);
      forward_from = pos + step.size;
      if (phase_ == Phase::kClosed) return 0;
    }
    switch (step.action) {
      case FrontendRelay::Step::Action::kNeedMore:
      case FrontendRelay::Step::Action::kRelay:
        break;
      case FrontendRelay::Step::Action::kHold:
        Send(Side::kUpstream, buf.substr(forward_from, pos - forward_from));
        return pos;
      case FrontendRelay::Step::Action::kViolation:
        FailProtocol(step.message);
        return 0;
      case FrontendRelay::Step::Action::kEnded:
        return 0;
    }
    pos += step.size;
    if (step.terminate) {
      terminate = true;
      break;
    }
  }
  Send(Side::kUpstream, buf.substr(forward_from, pos - forward_from));
  if (terminate && phase_ != Phase::kClosed) {
    // Everything the client sent before Terminate must still reach the
    // upstream; then both sides close.
    duplex_.upstream().close_after_flush = true;
    if (duplex_.upstream().pending() == 0 && duplex_.upstream().open()) duplex_.upstream().conn->Close();
    CloseClient();
    Finish(warden::v1::SESSION_END_REASON_CLIENT, "client sent Terminate");
    ArmTimer(kLingerMs);
  }
  return pos;
}

void Session::StartClientRelay() {
  if (timer_ != 0) {  // disarm the startup timer.
    loop_->CancelTimer(timer_);
    timer_ = 0;
  }
  if (!duplex_.client().in.empty()) Consume(Side::kClient, nullptr, 0);
  ReadLoop(Side::kClient);
}

// ---------------------------------------------------------------------------
// Upstream connection.

void Session::ConnectUpstream() {
  phase_ = Phase::kUpstreamConnect;
  const config::Upstream& up = admission_.database->upstream;
  const auto tls = shared_->upstream_tls.find(&up);
  connector_ = std::make_unique<UpstreamConnector>(
      &up, tls != shared_->upstream_tls.end() ? tls->second.get() : nullptr,
      admission_.upstream_user, admission_.startup_params);
  ArmTimer(up.connect_timeout_ms);
  if (auto literal = connector_->LiteralAddresses(); literal.has_value()) {
    connector_->SetAddresses(*std::move(literal));
    return ConnectNext();
  }
  // A host name: resolved off the loop (getaddrinfo blocks) by the
  // server's resolver, which answers on this loop and keeps it alive until
  // then. The connect timer armed above bounds the wait.
  std::weak_ptr<Session> weak = weak_from_this();
  shared_->resolver->Resolve(
      up.host, up.port, loop_->shared_from_this(),
      [weak](absl::StatusOr<net::Addresses> addresses) {
        auto self = weak.lock();
        if (!self || self->phase_ != Phase::kUpstreamConnect) return;
        if (!addresses.ok()) {
          return self->Fail(
              self->connector_->LookupFailed(addresses.status()));
        }
        self->connector_->SetAddresses(*std::move(addresses));
        self->ConnectNext();
      });
}

void Session::ConnectNext() {
  while (const UpstreamConnector::Address* address =
             connector_->NextAddress()) {
    const auto& [host, port] = *address;
    const int fd = net::StartConnect(host, port);
    if (fd < 0) continue;
    cancel_key_.SetUpstream(host, port);
    duplex_.upstream().conn = std::make_unique<net::Conn>(fd);
    Register(Side::kUpstream);  // the connect completes as EPOLLOUT.
    return;
  }
  Fail(connector_->ConnectFailed(0));
}

void Session::OnUpstreamConnectEvent() {
  int error = 0;
  socklen_t len = sizeof(error);
  getsockopt(duplex_.upstream().conn->fd(), SOL_SOCKET, SO_ERROR, &error, &len);
  if (error == 0) {
    // An SSLRequest first when TLS is configured, else the startup.
    phase_ = connector_->wants_tls() ? Phase::kUpstreamSsl
                                     : Phase::kUpstreamAuth;
    Send(Side::kUpstream, connector_->FirstMessage());
    return ReadLoop(Side::kUpstream);
  }
  duplex_.upstream().conn->Close();
  duplex_.upstream().conn.reset();
  if (connector_->has_next()) return ConnectNext();
  Fail(connector_->ConnectFailed(error));
}

void Session::DriveUpstreamHandshake() {
  const net::IoOutcome r = duplex_.upstream().conn->Handshake();
  switch (r.result) {
    case net::IoResult::kOk:
      phase_ = Phase::kUpstreamAuth;
      Send(Side::kUpstream, connector_->StartupMessage());
      return ReadLoop(Side::kUpstream);
    case net::IoResult::kWantRead:
    case net::IoResult::kWantWrite:
      return;  // the next edge continues the handshake.
    default:
      Fail(connector_->TlsFailed(r.error));
  }
}

bool Session::HandleUpstreamAuth(char type, absl::string_view body) {
  if (upstream_login_ == nullptr) {
    upstream_login_ = std::make_unique<UpstreamLogin>(
        admission_.database->upstream, admission_.upstream_user,
        admission_.upstream_password, admission_.database_name);
  }
  UpstreamLogin::Step step = upstream_login_->OnMessage(type, body);
  switch (step.state) {
    case UpstreamLogin::Step::State::kContinue:
      if (!step.reply.empty()) Send(Side::kUpstream, step.reply);
      return true;
    case UpstreamLogin::Step::State::kDone:
      upstream_login_.reset();
      phase_ = Phase::kRelay;
      EndPendingLogin();
      return true;
    case UpstreamLogin::Step::State::kFailed:
      spdlog::warn("session {}: upstream login failed: {} {}", peer_address_,
                   step.sqlstate, step.message);
      Fail(step.sqlstate, step.message,
           warden::v1::SESSION_END_REASON_UPSTREAM);
      return false;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Relay, upstream to client.

size_t Session::ProcessUpstream(absl::string_view buf) {
  if (phase_ == Phase::kUpstreamSsl) {
    const UpstreamConnector::SslAnswer answer = connector_->OnSslAnswer(buf);
    if (answer.failure.has_value()) {
      Fail(*answer.failure);
      return 0;
    }
    const absl::Status started =
        duplex_.upstream().conn->StartTls(answer.context, false, answer.verify_host);
    if (!started.ok()) {
      Fail(UpstreamConnector::TlsNotStarted(started));
      return 0;
    }
    phase_ = Phase::kUpstreamTls;
    return 1;
  }
  const size_t max_size = shared_->config->proxy.max_backend_message_bytes;
  size_t pos = 0, forward_from = 0;
  const bool was_ready = backend_.ready();
  // One clock reading for the messages of this read (Now()).
  now_ = absl::InfinitePast();
  while (pos < buf.size() && phase_ != Phase::kClosed) {
    const pgwire::Frame frame = pgwire::NextMessage(buf.substr(pos), max_size);
    if (frame.status == pgwire::FrameStatus::kNeedMore) break;
    absl::Status valid = frame.status == pgwire::FrameStatus::kError
                             ? frame.error
                             : pgwire::ValidateBackend(frame.type, frame.body);
    if (!valid.ok()) {
      Fail(pgwire::kConnectionFailure,
           absl::StrCat("invalid message from the upstream database: ",
                        valid.message()),
           warden::v1::SESSION_END_REASON_UPSTREAM);
      return 0;
    }
    if (const BackendRelay::Step screened =
            backend_.Screen(frame.type, frame.body);
        screened.action == BackendRelay::Step::Action::kFail) {
      Fail(screened.sqlstate, screened.message, screened.reason);
      return 0;
    }
    if (phase_ == Phase::kUpstreamAuth) {
      pos += frame.size;
      forward_from = pos;
      if (!HandleUpstreamAuth(frame.type, frame.body)) return 0;
      continue;
    }
    // What the message means (BackendRelay); the client gets it, or what
    // replaces it, in order with the messages before it.
    BackendRelay::Step step = backend_.OnMessage(frame.type, frame.body);
    switch (step.action) {
      case BackendRelay::Step::Action::kRelay:
        break;
      case BackendRelay::Step::Action::kReplace:
        Send(Side::kClient, buf.substr(forward_from, pos - forward_from));
        Send(Side::kClient, step.replacement);
        forward_from = pos + frame.size;
        break;
      case BackendRelay::Step::Action::kBackendKey:
        Send(Side::kClient, buf.substr(forward_from, pos - forward_from));
        if (!SendOwnCancelKey(step.key)) return 0;
        forward_from = pos + frame.size;
        break;
      case BackendRelay::Step::Action::kFail:
        Fail(step.sqlstate, step.message, step.reason);
        return 0;
    }
    pos += frame.size;
  }
  Send(Side::kClient, buf.substr(forward_from, pos - forward_from));
  if (correlator_.TakeResume() && phase_ == Phase::kRelay) {
    // Answers brought the unanswered executions back under the limit.
    loop_->Defer([self = shared_from_this()] { self->ReadLoop(Side::kClient); });
  }
  if (!was_ready && backend_.ready() && phase_ == Phase::kRelay) {
    spdlog::debug("session {}: relaying {}/{} for {}", peer_address_,
                  environment_->name, admission_.database_name,
                  identity_.user());
    loop_->Defer([self = shared_from_this()] {
      if (self->phase_ == Phase::kRelay) self->StartClientRelay();
    });
  }
  return pos;
}

bool Session::SendOwnCancelKey(const pgwire::BackendKeyData& key) {
  // The session may be gone when a cancel arrives; its loop is kept alive
  // by the registry entry until Release.
  std::weak_ptr<Session> weak = weak_from_this();
  std::shared_ptr<net::EventLoop> loop = loop_->shared_from_this();
  absl::StatusOr<std::string> ours = cancel_key_.OnUpstreamKey(key, [weak, loop] {
    loop->Post([weak] {
      if (auto self = weak.lock()) self->OnClientCancel();
    });
  });
  if (!ours.ok()) {
    Fail(pgwire::kInternalError, ours.status().message(),
         warden::v1::SESSION_END_REASON_INTERNAL);
    return false;
  }
  Send(Side::kClient, *ours);
  return true;
}

// ---------------------------------------------------------------------------
// Endings.

void Session::Fail(absl::string_view sqlstate, absl::string_view message,
                   SessionEndReason reason) {
  if (phase_ == Phase::kClosed) return;
  const bool can_tell_client = duplex_.client().open() && phase_ != Phase::kClientTls;
  CloseUpstream(/*cancel_if_busy=*/true);
  if (can_tell_client) {
    std::string error;
    pgwire::WriteErrorResponse(&error, "FATAL", sqlstate, message);
    Send(Side::kClient, error);
    duplex_.client().close_after_flush = true;
    if (duplex_.client().open() && duplex_.client().pending() == 0) duplex_.client().conn->Close();
  } else {
    CloseClient();
  }
  Finish(reason, message);
  if (duplex_.client().open()) ArmTimer(kLingerMs);
}

void Session::OnPolicyChanged() {
  if (phase_ != Phase::kRelay || !shared_->governed) return;
  const std::shared_ptr<const gate::Gate> gate = shared_->CurrentGate();
  // The directory's word on this user applies at once, even while idle.
  if (gate != nullptr) chain_.OnPolicy(*gate);
}

void Session::OnClientCancel() {
  if (phase_ != Phase::kRelay || !chain_.holding()) return;
  spdlog::info("session {}: {} cancelled a held statement", peer_address_,
               identity_.user());
  chain_.OnCancel();
}

void Session::Shutdown() {
  Fail(pgwire::kAdminShutdown,
       "terminating connection because warden-proxy is shutting down",
       warden::v1::SESSION_END_REASON_INTERNAL);
}

void Session::FailProtocol(absl::string_view message) {
  spdlog::info("session {}: protocol violation: {}", peer_address_,
               std::string(message));
  Fail(pgwire::kProtocolViolation, message,
       warden::v1::SESSION_END_REASON_POLICY);
}

void Session::CloseUpstream(bool cancel_if_busy) {
  if (!duplex_.upstream().open()) return;
  if (cancel_if_busy && cancel_key_.has_upstream_key() && Busy()) {
    // PostgreSQL notices a vanished client only when it next writes; cancel
    // the running statement so it does not run on unattended.
    cancel_key_.CancelUpstream(loop_);
  }
  if (phase_ == Phase::kRelay && duplex_.upstream().pending() == 0) {
    std::string terminate;
    pgwire::WriteTerminate(&terminate);
    duplex_.upstream().conn->Write(terminate.data(), terminate.size());
  }
  duplex_.upstream().conn->Close();
  MaybeRelease();
}

void Session::CloseClient() {
  if (duplex_.client().open()) duplex_.client().conn->Close();
  MaybeRelease();
}

void Session::AwaitAuditWrite() {
  std::weak_ptr<Session> weak = weak_from_this();
  AfterAuditWrite(loop_, shared_->recorder,
                  [weak](const absl::Status& status) {
                    if (auto self = weak.lock()) self->OnAuditWritten(status);
                  });
}

void Session::ResumeAfter(absl::Duration delay) {
  std::weak_ptr<Session> weak = weak_from_this();
  loop_->AddTimer(std::chrono::milliseconds(absl::ToInt64Milliseconds(delay)),
                  [weak] {
                    if (auto self = weak.lock()) self->ResumeAfterThrottle();
                  });
}

void Session::ResumeAfterThrottle() {
  if (!audit_->throttled() || phase_ == Phase::kClosed) return;
  audit_->Unthrottle();
  auto keep = shared_from_this();  // Consume may end the session.
  Consume(Side::kClient, nullptr, 0);
  if (!audit_->throttled() && phase_ != Phase::kClosed) {
    ReadLoop(Side::kClient);
  }
}

void Session::OnAuditWritten(const absl::Status& status) {
  audit_->Written();
  if (phase_ == Phase::kClosed) return;
  auto keep = shared_from_this();  // Fail or Flush may end the session.
  if (!status.ok()) {
    spdlog::error("session {}: audit events not recorded: {}", peer_address_,
                  status.ToString());
    return Fail(pgwire::kInternalError,
                "Warden could not write this session's audit events (the "
                "local spool is failing); what they record did not run",
                warden::v1::SESSION_END_REASON_INTERNAL);
  }
  // A statement in sync mode waits for the control plane: its event can
  // be sent now.
  if (shared_->audit_sync != nullptr) shared_->audit_sync->Nudge();
  Flush(Side::kUpstream);
}

void Session::BuildChain() {
  facts_.subject = &subject_;
  facts_.environment = environment_->name;
  facts_.database = admission_.database_name;
  facts_.peer_address = peer_address_;
  const bool audit = shared_->recorder != nullptr;
  if (const stages::DirectoryStage* directory = admission_.directory.get()) {
    audit_->ChainBuilt([directory] { return directory->identity_changes(); });
  } else {
    audit_->ChainBuilt(nullptr);
  }
  // Client to database: directory, policy, audit (stages/README.md).
  if (admission_.directory != nullptr) {
    chain_.Add(std::move(admission_.directory));
  }
  if (shared_->governed) {
    chain_.Add(std::make_unique<stages::PolicyStage>(
        static_cast<stages::StageCallbacks*>(this), audit));
  }
  if (audit) {
    stages::AuditStageOptions options;
    options.results = shared_->audit_results;
    if (shared_->audit_sync != nullptr) {
      options.sync = shared_->audit_sync;
      options.sync_timeout_ms = shared_->audit_sync_timeout_ms;
    }
    options.results_lost = &shared_->audit_results_lost;
    auto stage = std::make_unique<stages::AuditStage>(
        static_cast<stages::StageCallbacks*>(this),
        static_cast<stages::AuditTrail*>(this), options);
    audit_stage_ = stage.get();
    chain_.Add(std::move(stage));
  }
}

void Session::Refuse(std::string error, bool parse) {
  // The first refusal of a message wins (see Chain).
  if (execution_.refusal.has_value()) return;
  execution_.refusal = stages::Refusal{std::move(error), parse};
}

void Session::Resume() {
  if (phase_ == Phase::kClosed) return;
  // The client may have hung up while its statement was held (the edge
  // may have come with the bytes read before the hold, e.g. a Terminate
  // right after the statement): nobody waits for it, it is withdrawn.
  if (duplex_.client().open() && !duplex_.client().conn->tls()) {
    char byte;
    const ssize_t n =
        recv(duplex_.client().conn->fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                   errno != EINTR)) {
      spdlog::info("session {}: the client left while its statement was held",
                   peer_address_);
      return PeerLost(Side::kClient, /*eof=*/true, "");
    }
  }
  chain_.MarkResumed();
  auto keep = shared_from_this();  // Consume may end the session.
  Consume(Side::kClient, nullptr, 0);
  if (!chain_.holding() && phase_ != Phase::kClosed) ReadLoop(Side::kClient);
}


void Session::Finish(SessionEndReason reason, absl::string_view why) {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  end_reason_ = reason;
  // Drop the pending timer; Fail re-arms one to linger.
  if (timer_ != 0) {
    loop_->CancelTimer(timer_);
    timer_ = 0;
  }
  cancel_key_.Release();
  // The stages' last words (a held statement withdrawn, the results of
  // what was still running).
  chain_.OnEnd(why);
  if (audit_session_started_) {
    warden::v1::AuditEvent event =
        NewEvent(warden::v1::AUDIT_EVENT_KIND_SESSION_END);
    auto* end = event.mutable_session_end();
    end->set_reason(reason);
    end->set_detail(std::string(why));
    end->set_statements(audit_stage_ != nullptr ? audit_stage_->statements()
                                                : 0);
    const absl::Duration took = absl::Now() - started_at_;
    SetDuration(took, end->mutable_duration());
    Audit(std::move(event));  // the session is over either way.
  }
  if (identity_.user().empty()) {
    spdlog::debug("session {} ended ({}): {}", peer_address_,
                  ReasonName(reason), std::string(why));
  } else {
    // Authenticated sessions are worth a log line each (the audit trail
    // has the full record when audit is on).
    spdlog::info("session {} of {} ended ({}): {}", peer_address_,
                 identity_.user(), ReasonName(reason), std::string(why));
  }
  MaybeRelease();
}

}  // namespace warden::dataplane::session
