#include "dataplane/session/session.h"

#include <sys/epoll.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/crypto.h"
#include "common/names.h"
#include "dataplane/net/address.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/session/audit_writes.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::session {
namespace {

using warden::v1::SessionEndReason;

constexpr int kLingerMs = 2000;

// "client" for SESSION_END_REASON_CLIENT, for log lines.
std::string ReasonName(SessionEndReason r) {
  return absl::AsciiStrToLower(absl::StripPrefix(
      warden::v1::SessionEndReason_Name(r), "SESSION_END_REASON_"));
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
  ClientLogin::Context login = shared_->LoginContext(*listener_);
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
  if (s == Side::kUpstream && phase_ == Phase::kUpstream &&
      dial_->OnEvents(events)) {
    return;  // connecting, or the TLS handshake.
  }
  if (s == Side::kClient && phase_ == Phase::kClientTls) {
    return DriveClientHandshake();
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
  return phase_ == Phase::kUpstream ? dial_->reading()
                                    : phase_ == Phase::kRelay;
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
  return phase_ == Phase::kUpstream && s == Side::kUpstream &&
         dial_->StopAfterRead();
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

void Session::After(absl::Duration delay, void (*then)(Session*)) {
  std::weak_ptr<Session> weak = weak_from_this();
  loop_->AddTimer(std::chrono::milliseconds(absl::ToInt64Milliseconds(delay)),
                  [weak, then] {
                    if (auto self = weak.lock()) then(self.get());
                  });
}

void Session::OnTimer() {
  switch (phase_) {
    case Phase::kLogin:
    case Phase::kClientTls:
      Fail(pgwire::kQueryCanceled, "canceling authentication due to timeout",
           warden::v1::SESSION_END_REASON_CLIENT);
      return;
    case Phase::kUpstream:
      return DialFailed(dial_->TimedOut());
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
  Finish(warden::v1::SESSION_END_REASON_CLIENT, "cancel request");
  const bool known = ForwardCancelRequest(
      shared_->cancels, loop_, pid, secret,
      [self = shared_from_this()] { self->CloseClient(); });
  spdlog::debug("session {}: cancel request for {} key", peer_address_,
                known ? "a known" : "an unknown");
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
  After(delay, [](Session* self) {
    if (self->phase_ == Phase::kLogin) self->client_login_->ResumeAdmission();
  });
}

void Session::OnLoggedIn(ClientLogin::Admission admission) {
  admission_ = std::move(admission);
  refusals_.set_fallback_token(std::move(admission_.refusal_token));
  audit_session_started_ = shared_->recorder != nullptr;
  facts_.subject = &subject_;
  facts_.environment = environment_->name;
  facts_.database = admission_.database_name;
  facts_.peer_address = peer_address_;
  if (const stages::DirectoryStage* directory = admission_.directory.get()) {
    audit_->ChainBuilt([directory] { return directory->identity_changes(); });
  } else {
    audit_->ChainBuilt(nullptr);
  }
  audit_stage_ = shared_->BuildChain(
      std::move(admission_.directory),
      static_cast<stages::StageCallbacks*>(this),
      static_cast<stages::AuditTrail*>(this), &chain_);
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
  const bool relaying = phase_ == Phase::kRelay;
  // One policy snapshot for the whole batch (see SharedState::CurrentGate).
  const std::shared_ptr<const gate::Gate> gate =
      shared_->governed && relaying ? shared_->CurrentGate() : nullptr;
  // One clock reading for the messages of this read (Now()).
  now_ = absl::InfinitePast();
  const FrontendRelay::Read read =
      frontend_.OnBytes(buf, gate.get(), relaying, this);
  switch (read.end) {
    case FrontendRelay::Read::End::kMore:
    case FrontendRelay::Read::End::kHeld:
      break;
    case FrontendRelay::Read::End::kViolation:
      FailProtocol(read.message);
      return 0;
    case FrontendRelay::Read::End::kEnded:
      return 0;
    case FrontendRelay::Read::End::kTerminate:
      if (phase_ == Phase::kClosed) break;
      // Everything the client sent before Terminate must still reach the
      // upstream; then both sides close.
      duplex_.upstream().close_after_flush = true;
      if (duplex_.upstream().pending() == 0 && duplex_.upstream().open()) {
        duplex_.upstream().conn->Close();
      }
      CloseClient();
      Finish(warden::v1::SESSION_END_REASON_CLIENT, "client sent Terminate");
      ArmTimer(kLingerMs);
      break;
  }
  return read.used;
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
  phase_ = Phase::kUpstream;
  const config::Upstream& up = admission_.database->upstream;
  const auto tls = shared_->upstream_tls.find(&up);
  UpstreamDial::Login login;
  login.user = admission_.upstream_user;
  login.password = admission_.upstream_password;
  login.database = admission_.database_name;
  login.params = admission_.startup_params;
  dial_ = std::make_unique<UpstreamDial>(
      static_cast<UpstreamDial::Callbacks*>(this), &duplex_.upstream(), &up,
      tls != shared_->upstream_tls.end() ? tls->second.get() : nullptr,
      std::move(login), peer_address_);
  ArmTimer(up.connect_timeout_ms);  // bounds the lookup too.
  dial_->Start();
}

bool Session::WatchUpstream(const std::string& host, uint16_t port) {
  cancel_key_.SetUpstream(host, port);
  return Register(Side::kUpstream);
}

void Session::Resolve(const std::string& host, uint16_t port) {
  // The server's resolver answers on this loop and keeps it alive until
  // then.
  std::weak_ptr<Session> weak = weak_from_this();
  shared_->resolver->Resolve(
      host, port, loop_->shared_from_this(),
      [weak](absl::StatusOr<net::Addresses> addresses) {
        auto self = weak.lock();
        if (!self || self->phase_ != Phase::kUpstream) return;
        self->dial_->OnResolved(std::move(addresses));
      });
}

bool Session::OnLoginMessage(char type, absl::string_view body) {
  if (!dial_->OnLoginMessage(type, body)) return false;
  if (dial_->state() == UpstreamDial::State::kDone) {
    phase_ = Phase::kRelay;
    EndPendingLogin();
  }
  return true;
}

// ---------------------------------------------------------------------------
// Relay, upstream to client.

size_t Session::ProcessUpstream(absl::string_view buf) {
  if (phase_ == Phase::kUpstream &&
      dial_->state() == UpstreamDial::State::kSsl) {
    return dial_->OnSslAnswer(buf);
  }
  const bool was_ready = backend_.ready();
  // One clock reading for the messages of this read (Now()).
  now_ = absl::InfinitePast();
  const size_t used = backend_.OnBytes(
      buf, shared_->config->proxy.max_backend_message_bytes, Now(), this);
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
  return used;
}

bool Session::SendOwnCancelKey(const pgwire::BackendKeyData& key) {
  // The session may be gone when a cancel arrives.
  absl::StatusOr<std::string> ours = cancel_key_.OnUpstreamKey(
      key, loop_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->OnClientCancel();
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
  After(delay, [](Session* self) { self->ResumeAfterThrottle(); });
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
  if (duplex_.client().open() && duplex_.client().conn->PeerHungUp()) {
    spdlog::info("session {}: the client left while its statement was held",
                 peer_address_);
    return PeerLost(Side::kClient, /*eof=*/true, "");
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
  // What was still running completes; the stages' last words (a held
  // statement withdrawn, the results of what was still running).
  correlator_.Finish(why, absl::Now());
  chain_.OnEnd(why);
  if (audit_session_started_) {
    audit_->RecordEnd(
        reason, why, audit_stage_ != nullptr ? audit_stage_->statements() : 0,
        absl::Now() - started_at_);
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
