// One proxied client connection: startup and TLS negotiation, client
// authentication, the upstream connection with service credentials, then a
// validated message relay in both directions.
//
// Threading: a Session lives on one worker's EventLoop and is only touched
// from that thread. State shared across sessions lives in SharedState.
#ifndef WARDEN_DATAPLANE_SESSION_SESSION_H_
#define WARDEN_DATAPLANE_SESSION_SESSION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/config/config.h"
#include "dataplane/net/event_loop.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/session/backend_relay.h"
#include "dataplane/session/cancel_key.h"
#include "dataplane/session/client_login.h"
#include "dataplane/session/correlator.h"
#include "dataplane/session/duplex.h"
#include "dataplane/session/frontend_relay.h"
#include "dataplane/session/refusals.h"
#include "dataplane/session/session_audit.h"
#include "dataplane/session/shared_state.h"
#include "dataplane/session/upstream_dial.h"
#include "dataplane/stages/audit_stage.h"
#include "dataplane/stages/chain.h"
#include "dataplane/stages/stage.h"
#include "proto/warden/v1/audit.pb.h"
#include "proto/warden/v1/session.pb.h"

namespace warden::dataplane::session {

class Session;
// The sessions of one worker, which own them; loop thread only.
using SessionMap = absl::flat_hash_map<Session*, std::shared_ptr<Session>>;

class Session : public std::enable_shared_from_this<Session>,
                private stages::StageCallbacks,
                private stages::AuditTrail,
                private ClientLogin::Callbacks,
                private SessionAudit::Callbacks,
                private Duplex::Callbacks,
                private UpstreamDial::Callbacks,
                private FrontendRelay::Output,
                private BackendRelay::Output {
 public:
  // Takes ownership of `client_fd`. Create with std::make_shared; Start()
  // puts the session into `live`, and it removes itself once both of its
  // connections are closed.
  Session(SharedState* shared, const config::Listener* listener, int client_fd,
          net::EventLoop* loop, SessionMap* live);
  ~Session();

  // Start registers the client socket and reads the startup packet. Call
  // once, on the loop thread.
  void Start();

  // Shutdown tells the client the proxy is going away (FATAL 57P01), cancels
  // a running statement upstream and closes both sides.
  void Shutdown();

  // OnPolicyChanged applies a new policy's directory at once (loop thread):
  // a user deactivated over SCIM is told so (FATAL 28000) and closed, even
  // while idle.
  void OnPolicyChanged();

  // OnClientCancel: the client sent a CancelRequest with this session's key
  // (loop thread). A statement a stage holds is withdrawn; one running
  // upstream is cancelled there by the requester.
  void OnClientCancel();

 private:
  enum class Phase {
    kLogin,      // startup packets and authentication (ClientLogin).
    kClientTls,  // TLS handshake with the client.
    kUpstream,   // reaching and logging in to the database (UpstreamDial).
    kRelay,      // relaying (client reads start at the first 'Z').
    kClosed,
  };
  // Event plumbing: the sockets and their buffers are Duplex's; the
  // session says when a side may be read and what its bytes mean.
  Duplex::Peer& peer(Side s) { return duplex_.peer(s); }
  Duplex::Peer& other(Side s) { return duplex_.other(s); }
  static Side Other(Side s) { return Duplex::Other(s); }
  bool Register(Side s);
  void MaybeRelease();
  void ReadLoop(Side s) { duplex_.ReadLoop(s); }
  void Consume(Side s, const char* data, size_t n) {
    duplex_.Consume(s, data, n);
  }
  void Send(Side s, absl::string_view data) { duplex_.Send(s, data); }
  void Flush(Side s) { duplex_.Flush(s); }
  // PeerLost ends the session after side `s` closed (eof) or broke.
  void PeerLost(Side s, bool eof, const std::string& error);
  // Duplex::Callbacks.
  void OnEvents(Side s, uint32_t events) override;
  bool MayRead(Side s) const override;
  bool MayReadMore(Side s) override;
  void DeferRead(Side s) override;
  size_t OnBytes(Side s, absl::string_view buf) override;
  bool StopAfterRead(Side s) override;
  void OnPeerLost(Side s, bool eof, const std::string& error) override {
    PeerLost(s, eof, error);
  }
  bool UpstreamHeld() const override { return audit_->write_pending(); }
  void OnPeerClosed() override { MaybeRelease(); }
  // The session's one timer (startup, connect, linger): OnTimer.
  void ArmTimer(int ms);
  void OnTimer();
  // Calls `then` after `delay` unless the session is gone by then.
  void After(absl::Duration delay, void (*then)(Session*));

  // Client side. ProcessLogin passes the client's bytes to its login.
  size_t ProcessLogin(absl::string_view buf);
  void DriveClientHandshake();
  size_t ProcessClient(absl::string_view buf);
  void StartClientRelay();

  // Upstream side: UpstreamDial reaches the database and logs in; the
  // relay's bytes go through BackendRelay.
  void ConnectUpstream();
  size_t ProcessUpstream(absl::string_view buf);
  // UpstreamDial::Callbacks.
  bool WatchUpstream(const std::string& host, uint16_t port) override;
  void SendUpstream(absl::string_view bytes) override {
    Send(Side::kUpstream, bytes);
  }
  void ReadUpstream() override { ReadLoop(Side::kUpstream); }
  void Resolve(const std::string& host, uint16_t port) override;
  void DialFailed(const UpstreamConnector::Failure& failure) override {
    Fail(failure.sqlstate, failure.message, failure.reason);
  }
  // BackendRelay::Output (Fail and ended() below serve it too).
  void ToClient(absl::string_view bytes) override {
    Send(Side::kClient, bytes);
  }
  bool logging_in() const override { return phase_ == Phase::kUpstream; }
  bool OnLoginMessage(char type, absl::string_view body) override;
  bool OnBackendKey(const pgwire::BackendKeyData& key) override {
    return SendOwnCancelKey(key);
  }
  // FrontendRelay::Output.
  void ToUpstream(absl::string_view bytes) override {
    Send(Side::kUpstream, bytes);
  }
  bool MayTake(absl::string_view next) override {
    return !audit_->ThrottledBefore(next);
  }
  // Keeps the backend's cancel `key` for this session's cancels and sends
  // the client the session's own key (registered in SharedState::cancels)
  // instead; false when the session failed.
  bool SendOwnCancelKey(const pgwire::BackendKeyData& key);

  // Endings. `at_fault` says which side ended the session, for logs and,
  // later, the audit record.
  void Fail(absl::string_view sqlstate, absl::string_view message,
            warden::v1::SessionEndReason reason) override;
  void FailProtocol(absl::string_view message);
  void CloseUpstream(bool cancel_if_busy);
  void CloseClient();
  void Finish(warden::v1::SessionEndReason reason, absl::string_view why);
  bool Busy() const { return correlator_.busy(); }

  // StageCallbacks.
  stages::Execution& execution() override { return execution_; }
  const stages::Pipeline& pipeline() const override {
    return correlator_.pipeline();
  }
  const stages::SessionFacts& facts() const override { return facts_; }
  void Refuse(std::string error, bool parse) override;
  void SendToClient(absl::string_view bytes) override {
    Send(Side::kClient, bytes);
  }
  void Resume() override;
  net::EventLoop& loop() override { return *loop_; }
  bool ended() const override { return phase_ == Phase::kClosed; }
  std::vector<stages::Completion>* completions() override {
    return correlator_.completions();
  }
  const stages::ExecutionRecord* answering() const override {
    return correlator_.answering();
  }
  absl::Time Now() override {
    if (now_ == absl::InfinitePast()) now_ = absl::Now();
    return now_;
  }
  // AuditTrail and ClientLogin::Callbacks: the session's events
  // (SessionAudit).
  warden::v1::AuditEvent NewEvent(
      warden::v1::AuditEventKind kind) const override {
    return audit_->NewEvent(kind);
  }
  absl::StatusOr<uint64_t> Record(warden::v1::AuditEvent* event) override {
    return audit_->Record(event);
  }
  bool Audit(warden::v1::AuditEvent event) override {
    return audit_->Audit(std::move(event));
  }
  // SessionAudit::Callbacks. OnAuditWritten: this batch's events are on
  // disk (what waited goes upstream) or not (the session fails);
  // ResumeAfterThrottle: the audit budget allows reading the client again.
  void AwaitAuditWrite() override;
  void ResumeAfter(absl::Duration delay) override;
  void OnAuditWritten(const absl::Status& status);
  void ResumeAfterThrottle();
  // ClientLogin::Callbacks (SendToClient, Fail, ended, NewEvent and Audit
  // above serve the login too).
  void StartClientTls(SSL_CTX* context) override;
  bool ClientTls() const override { return duplex_.client().conn->tls(); }
  std::string ClientCertificatePem() const override {
    return duplex_.client().conn->PeerCertificatePem();
  }
  void OnCancelRequest(int32_t pid, int32_t secret) override;
  void OnIdentityProven() override;
  std::optional<absl::Duration> LoginAuditWait() override;
  void ResumeLoginAfter(absl::Duration delay) override;
  void OnLoggedIn(ClientLogin::Admission admission) override;
  SharedState* shared_;
  net::EventLoop* loop_;
  SessionMap* live_;
  bool released_ = false;
  const config::Listener* listener_;
  const config::Environment* environment_;
  net::EventLoop::TimerId timer_ = 0;

  Phase phase_ = Phase::kLogin;
  // The two sockets and the bytes between them.
  Duplex duplex_{static_cast<Duplex::Callbacks*>(this),
                 shared_->config->proxy.max_buffered_bytes};
  std::string peer_address_;
  std::string peer_host_;  // the address without the port

  // The client's login (kLogin and kClientTls only), then what it
  // settled: the database, the role to log in to it as, the parameters to
  // pass on.
  std::unique_ptr<ClientLogin> client_login_;
  ClientLogin::Admission admission_;
  // Who connected (set by the login once the credentials held).
  warden::v1::Identity identity_;
  // Reaching and logging in to the upstream (from kUpstream on).
  std::unique_ptr<UpstreamDial> dial_;

  // Relay state.
  CancelKey cancel_key_{&shared_->cancels};
  // Batches, executions and portals in flight, in protocol order.
  Correlator correlator_;
  // Counted in SharedState::pending_logins until logged in or gone.
  bool pending_login_ = false;
  void EndPendingLogin() {
    if (pending_login_) shared_->pending_logins.Remove(peer_host_);
    pending_login_ = false;
  }
  bool ended_ = false;

  // Enforcement state (only used when shared_->gate is set).
  policy::engine::Subject subject_;
  Refusals refusals_;
  warden::v1::SessionEndReason end_reason_ =
      warden::v1::SESSION_END_REASON_UNSPECIFIED;

  // Audit state.
  std::string session_id_;       // random, for correlating events
  absl::Time started_at_;
  bool audit_session_started_ = false;
  // The session's events: staged, shared fields, the hold on the upstream
  // until they are written, the audit budget (set in the constructor).
  std::unique_ptr<SessionAudit> audit_;

  // The statement path: the stages, the message in flight, who and where.
  stages::Chain chain_{this};
  stages::AuditStage* audit_stage_ = nullptr;  // in chain_; null: no audit
  // What the database's messages mean once the relay runs: its first
  // ReadyForQuery, batches ended, refusals taken back, a FATAL error.
  BackendRelay backend_{shared_->governed, &correlator_, &refusals_, &chain_};
  // What the client's messages mean once the relay runs: framing and
  // validation, the stages' word, shields and refusals' substitutes.
  FrontendRelay frontend_{&correlator_, &refusals_, &chain_,
                          static_cast<stages::StageCallbacks*>(this),
                          shared_->config->proxy.max_message_bytes};
  stages::Execution execution_;
  stages::SessionFacts facts_;
  // One clock reading per batch of messages (Now()).
  absl::Time now_ = absl::InfinitePast();
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_SESSION_H_
