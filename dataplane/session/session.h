// One proxied client connection: startup and TLS negotiation, client
// authentication, the upstream connection with service credentials, then a
// validated message relay in both directions.
//
// Threading: a Session lives on one worker's EventLoop and is only touched
// from that thread. State shared across sessions lives in SharedState.
#ifndef WARDEN_DATAPLANE_SESSION_SESSION_H_
#define WARDEN_DATAPLANE_SESSION_SESSION_H_

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/login_failures.h"
#include "common/tls.h"
#include "common/names.h"
#include "dataplane/audit/recorder.h"
#include "dataplane/config/config.h"
#include "dataplane/gate/gate.h"
#include "dataplane/net/conn.h"
#include "dataplane/net/event_loop.h"
#include "dataplane/net/resolver.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/session/authenticator.h"
#include "dataplane/session/cancel_registry.h"
#include "dataplane/session/refusals.h"
#include "dataplane/session/result_tracker.h"
#include "proto/warden/v1/audit.pb.h"
#include "proto/warden/v1/session.pb.h"

namespace warden::auth {
class ScramClient;
}

namespace warden::session {

// Connections per client address that have not finished logging in.
// Thread-safe (sessions of every worker share one).
class PendingLogins {
 public:
  // Counts one more for `host`; false (and not counted) at `limit`
  // (0: none).
  bool Add(const std::string& host, int limit) {
    absl::MutexLock lock(&mu_);
    int& n = count_[host];
    if (limit > 0 && n >= limit) {
      if (n == 0) count_.erase(host);
      return false;
    }
    ++n;
    return true;
  }
  void Remove(const std::string& host) {
    absl::MutexLock lock(&mu_);
    auto it = count_.find(host);
    if (it == count_.end()) return;
    if (--it->second <= 0) count_.erase(it);
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> count_ ABSL_GUARDED_BY(mu_);
};

// Audit events an identity recorded since `start`, across all its sessions
// (AuditThrottled): while the spool is backlogged, the budget is one per
// identity, so opening more sessions, or a new one per statement, buys no
// more of the spool.
struct AuditWindow {
  absl::Mutex mu;
  absl::Time start ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  int64_t events ABSL_GUARDED_BY(mu) = 0;
  int64_t bytes ABSL_GUARDED_BY(mu) = 0;
  absl::Time last_used ABSL_GUARDED_BY(mu) = absl::InfinitePast();
};

// The windows, by identity (folded user name). Kept past their sessions'
// end (an identity that reconnects finds its unpaid window), dropped once
// idle for a while when there are many.
class AuditWindows {
 public:
  std::shared_ptr<AuditWindow> For(const std::string& identity,
                                   absl::Time now);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<AuditWindow>> windows_
      ABSL_GUARDED_BY(mu_);
};

// Everything sessions share. Built once at start; the maps are read-only
// afterwards, the registry and counters are thread-safe.
struct SharedState {
  const config::ProxyConfig* config = nullptr;
  // The config's users (`users:`), folded and by skeleton: a login name
  // that looks like one of them without being it is refused.
  absl::flat_hash_set<std::string> config_user_names;
  LookAlikeIndex config_user_lookalikes;
  // Whether a policy is configured (set once at start). Without one nothing
  // is enforced.
  bool governed = false;
  // The policy gate in force. Replaced as a whole on reload; every batch of
  // client messages is judged by the gate it loaded first, so a statement
  // never sees half of an old and half of a new policy.
  std::shared_ptr<const gate::Gate> CurrentGate() const {
    return std::atomic_load(&gate_);
  }
  void SetGate(std::shared_ptr<const gate::Gate> gate) {
    std::atomic_store(&gate_, std::move(gate));
  }

 private:
  std::shared_ptr<const gate::Gate> gate_;

 public:
  CancelRegistry cancels;
  // Where sessions record audit events; null when audit is off.
  audit::Recorder* recorder = nullptr;
  // Sync mode: the sender whose acknowledgements statements wait for, and
  // how long they wait; null in async mode.
  audit::Sender* audit_sync = nullptr;
  int audit_sync_timeout_ms = 2000;
  // Whether this proxy's audit events may name `environment` (its
  // certificate covers it); null: no control plane, anything goes. A
  // session on a listener it refuses is refused, so that none of its
  // events is recorded under another environment.
  std::function<absl::Status(const std::string& environment)> may_record;
  // Whether executions also record result events (audit.results).
  bool audit_results = false;
  // Result events that could not be recorded (the statement had run).
  std::atomic<uint64_t> audit_results_lost{0};
  // audit.backlogged_session_rate (0: no limit), and how often a session
  // was paused for it.
  int64_t audit_backlogged_session_rate = 0;
  std::atomic<uint64_t> audit_sessions_throttled{0};
  AuditWindows audit_windows;
  std::atomic<int> client_connections{0};
  // Failed logins per client address: the audit trail records the first
  // ones of a flood one by one and the rest as a summary, and an address
  // that keeps failing is refused for a while.
  warden::LoginFailures login_failures;
  PendingLogins pending_logins;
  // By listener name; absent when the listener has TLS disabled.
  absl::flat_hash_map<std::string, tls::ContextPtr> listener_tls;
  absl::flat_hash_map<std::string, std::unique_ptr<Authenticator>>
      authenticators;
  // By upstream (address of the config entry); absent when TLS is disabled.
  absl::flat_hash_map<const config::Upstream*, tls::ContextPtr> upstream_tls;
  // Looks up upstream host names (set by the server, which owns it; needed
  // only when an upstream is given by name).
  net::Resolver* resolver = nullptr;
};

class Session;
// The sessions of one worker, which own them; loop thread only.
using SessionMap = absl::flat_hash_map<Session*, std::shared_ptr<Session>>;

class Session : public std::enable_shared_from_this<Session> {
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

 private:
  enum class Phase {
    kStartup,          // reading a startup packet (maybe after TLS).
    kClientTls,        // TLS handshake with the client.
    kAuth,             // client authentication exchange.
    kUpstreamConnect,  // TCP connect to the upstream.
    kUpstreamSsl,      // waiting for the upstream's answer to SSLRequest.
    kUpstreamTls,      // TLS handshake with the upstream.
    kUpstreamAuth,     // authenticating to the upstream.
    kRelay,            // relaying (client reads start at the first 'Z').
    kClosed,
  };
  enum class Side { kClient, kUpstream };

  // Routes a socket's events to the session (one per peer).
  struct Watcher : net::EventLoop::Handler {
    Session* session = nullptr;
    Side side = Side::kClient;
    void OnEvents(uint32_t events) override { session->OnEvents(side, events); }
  };

  struct Peer {
    std::unique_ptr<net::Conn> conn;
    Watcher watcher;
    std::string in;                 // bytes of an incomplete message.
    std::string out;                // bytes not yet accepted by the socket.
    size_t out_pos = 0;             // start of unsent bytes in `out`.
    bool read_paused = false;       // backpressure from the other peer.
    bool read_wants_write = false;  // TLS read needs the socket writable.
    bool close_after_flush = false;
    size_t pending() const { return out.size() - out_pos; }
    bool open() const { return conn != nullptr && !conn->closed(); }
  };

  Peer& peer(Side s) { return s == Side::kClient ? client_ : upstream_; }
  Peer& other(Side s) { return s == Side::kClient ? upstream_ : client_; }
  Side Other(Side s) {
    return s == Side::kClient ? Side::kUpstream : Side::kClient;
  }

  // Event plumbing.
  void OnEvents(Side s, uint32_t events);
  bool Register(Side s);
  void MaybeRelease();
  void ReadLoop(Side s);
  bool MayRead(Side s) const;
  void Consume(Side s, const char* data, size_t n);
  // PeerLost ends the session after side `s` closed (eof) or broke.
  void PeerLost(Side s, bool eof, const std::string& error);
  void Send(Side s, absl::string_view data);
  void Flush(Side s);
  void ArmTimer(int ms);
  void OnTimer();

  // Client side.
  size_t ProcessStartup(absl::string_view buf);
  void HandleStartup(absl::string_view body);
  void HandleAuthStep(AuthStep step);
  void DriveClientHandshake();
  size_t ProcessClient(absl::string_view buf);
  void StartClientRelay();

  // Upstream side.
  void ConnectUpstream();
  void ConnectTo(std::vector<std::pair<std::string, uint16_t>> addresses,
                 size_t index);
  void OnUpstreamConnectEvent();
  void OnUpstreamConnected();
  void DriveUpstreamHandshake();
  void SendUpstreamStartup();
  size_t ProcessUpstream(absl::string_view buf);
  bool HandleUpstreamAuth(char type, absl::string_view body);

  // Endings. `at_fault` says which side ended the session, for logs and,
  // later, the audit record.
  void Fail(absl::string_view sqlstate, absl::string_view message,
            warden::v1::SessionEndReason reason);
  void FailProtocol(absl::string_view message);
  // ApplyDirectory reads the identity's entry in `gate`'s directory:
  // false if the user is deactivated or deleted there; else the subject's
  // groups become the proven ones plus the directory's.
  bool ApplyDirectory(const gate::Gate& gate);
  // RefuseIdentity turns away an identity that authenticated but may not
  // connect (deactivated, unmapped): an AUTHENTICATION failure event with
  // `reason`, then FATAL 28000 "Warden: <reason>".
  void RefuseIdentity(const std::string& reason);
  // A known name (the config's users, the directory's) that `user` looks
  // like without being one itself; "" when none.
  std::string LookAlikeOfKnownName(absl::string_view user) const;
  // RefuseLogin: the same for any refusal after the credentials held
  // (`message` to the client as FATAL `sqlstate`, `reason` recorded): each
  // login has exactly one AUTHENTICATION event.
  void RefuseLogin(const char* sqlstate, const std::string& message,
                   const std::string& reason);
  // The AUTHENTICATION event of a login whose credentials held.
  warden::v1::AuditEvent LoginEvent(bool success, const std::string& reason);
  std::string DeactivatedReason() const;
  void CloseDeactivated();
  void CloseUpstream(bool cancel_if_busy);
  void CloseClient();
  void Finish(warden::v1::SessionEndReason reason, absl::string_view why);
  bool Busy() const { return pending_syncs_ > 0 || unsynced_; }

  // Policy enforcement: a refused message is replaced upstream by a poison
  // whose error is rewritten into the refusal (see refusals.h).
  // Judge decides a frontend message (Query, Parse, Bind, Describe,
  // FunctionCall) and, when it must not run, writes its replacement to
  // `replacement` (left empty when the message may be relayed).
  void Judge(const gate::Gate& gate, char type, absl::string_view body,
             std::string* replacement);
  // `v`, or Warden's built-in denial no-pipelined-lexing when `sql` (of a
  // Query or Parse) holds a backslash or a non-ASCII byte and an earlier
  // statement of the
  // session may still change how PostgreSQL reads it.
  gate::Verdict SettledLexing(const gate::Gate& gate, gate::Verdict v,
                              absl::string_view sql) const;
  // Prepared statements refused at Parse or by SQL PREPARE (one namespace
  // in PostgreSQL), so that Bind, Describe and SQL EXECUTE of them get the
  // same refusal.
  void RememberRefused(std::string name, std::string error);
  // For an allowed message: the refusal of a prepared statement it
  // EXECUTEs, if any.
  // (Judging statements prepared under an older policy again on the way.)
  const std::string* RefusedExecute(const gate::Gate& gate,
                                    const gate::Verdict& v);
  // Records PREPAREs of a message (refused when `error` is set) and, for
  // allowed messages, DEALLOCATEs.
  void TrackSqlPrepares(const gate::Verdict& v, const std::string* error,
                        uint64_t generation);
  struct Prepared;
  void RememberPrepared(const std::string& name, Prepared prepared);
  void ForgetPrepared(const std::string& name);
  // For a prepared statement judged by an older policy: judges it again
  // with `gate`; returns the refusal if it is now refused (and remembers
  // it), nullptr otherwise.
  const std::string* Rejudge(const gate::Gate& gate, const std::string& name);
  // Audit. NewEvent starts an event of this session; Audit records it and
  // says whether it is on disk (false: the spool is full or failing).
  warden::v1::AuditEvent NewEvent(warden::v1::AuditEventKind kind) const;
  // Keeps the gate's verdict for RecordStatement (when audit is on).
  void KeepVerdictForAudit(const gate::Verdict& v);
  bool Audit(warden::v1::AuditEvent event);
  // Sync mode: stops relaying client messages until the control plane
  // acknowledged `sequence` (or the timeout refuses the held statement).
  void HoldForAudit(uint64_t sequence);
  void ResumeAfterAudit(bool timed_out);
  // Replaces a Query / Parse / Bind / FunctionCall by a poison carrying
  // `error`, as for a policy refusal.
  void PoisonMessage(char type, absl::string_view body,
                     const std::string& error, std::string* replacement);
  // Records a Query, Parse or FunctionCall with the gate's verdict (null
  // when no policy is configured). If it cannot be recorded, a message
  // that would run is replaced by a poison carrying a 53000 refusal: no
  // statement runs unrecorded.
  void RecordStatement(char type, absl::string_view body,
                       const gate::Verdict* verdict, std::string* replacement);
  void EraseAuditTemplate(const std::string& key);
  // Result events: what the tracker completed, recorded.
  void RecordResults();
  // Tells the tracker of a client message being relayed (`replaced`: by a
  // poison or refusal, so its answer is not the statement's).
  void TrackClientMessage(char type, absl::string_view body, bool replaced,
                          absl::Time now);
  // Writes the substitute of refused message `type` (Refusals) to
  // `replacement`, its refusal queued for the batch the next Sync ends;
  // fails the session past kMaxRefusalsInFlight. `parse`: it stands for a
  // refused Parse.
  void Substitute(char type, absl::string_view body, std::string error,
                  std::string* replacement, bool parse = false);
  // The same for a poison the caller writes itself; returns its name.
  std::string QueueRefusal(std::string error);
  // Fails the session when kMaxRefusalsInFlight refusals wait already.
  void CheckRefusalRoom();
  // Gives the refusal to send instead of the upstream ErrorResponse
  // `parsed`, if it is a poison's.
  bool TakeRefusal(const pgwire::ErrorResponse& parsed, std::string* error);
  SharedState* shared_;
  net::EventLoop* loop_;
  SessionMap* live_;
  bool released_ = false;
  const config::Listener* listener_;
  const config::Environment* environment_;
  const config::Database* database_ = nullptr;
  net::EventLoop::TimerId timer_ = 0;

  Phase phase_ = Phase::kStartup;
  Peer client_;
  Peer upstream_;
  std::string peer_address_;
  std::string peer_host_;  // the address without the port
  // Upstream addresses still to try if the current connect fails.
  std::vector<std::pair<std::string, uint16_t>> upstream_addresses_;
  size_t upstream_address_index_ = 0;

  // Startup facts.
  std::vector<std::pair<std::string, std::string>> startup_params_;
  std::string user_;
  std::string database_name_;
  bool tls_negotiated_ = false;
  std::unique_ptr<AuthExchange> auth_;
  warden::v1::Identity identity_;
  std::unique_ptr<auth::ScramClient> scram_client_;
  // The role Warden logs in to the database as (the service role, or the
  // one an identity mapping picked) and its password.
  std::string upstream_user_;
  std::string upstream_password_;

  // Relay state.
  bool ready_ = false;  // first ReadyForQuery seen.
  int32_t proxy_pid_ = 0, proxy_secret_ = 0;
  bool key_allocated_ = false;
  CancelTarget cancel_target_;
  bool have_upstream_key_ = false;
  int pending_syncs_ = 0;           // Query/Sync/FunctionCall without 'Z'.
  bool unsynced_ = false;           // extended messages since the last Sync.
  bool executed_unsynced_ = false;  // an Execute since the last Sync.
  // Parse/Bind/Describe/Execute/Close since the last Sync: what PostgreSQL
  // may skip after an error, a Query with it.
  bool extended_since_sync_ = false;
  // Counted in SharedState::pending_logins until logged in or gone.
  bool pending_login_ = false;
  void EndPendingLogin() {
    if (pending_login_) shared_->pending_logins.Remove(peer_host_);
    pending_login_ = false;
  }
  // Where each portal came from (see ProcessClient): the batch of its Bind
  // (syncs_sent_ then), and whether that batch failed or a simple Query
  // replaced it, in which case PostgreSQL may hold it as freed memory.
  struct PortalOrigin {
    uint64_t batch = 0;
    bool tainted = false;
  };
  absl::flat_hash_map<std::string, PortalOrigin> portal_origins_;
  // An ErrorResponse since the last ReadyForQuery.
  bool batch_had_error_ = false;
  void NotePortalOrigin(const std::string& name, bool tainted);
  bool PortalSafe(absl::string_view name) const;
  // At ReadyForQuery: taints the finished batch's portals if it failed;
  // forgets them all when the transaction ended (`idle`).
  void SettlePortals(bool idle);
  bool upstream_fatal_ = false;     // upstream already sent a FATAL error.
  bool scram_client_done_ = false;  // server signature verified.
  bool ended_ = false;

  // Enforcement state (only used when shared_->gate is set).
  policy::engine::Subject subject_;
  // The groups the identity proved (token, certificate, config); the
  // directory's are added to them at every policy change.
  std::vector<std::string> base_groups_;
  uint64_t directory_generation_ = 0;  // of the gate last applied
  // The user's name was an ambiguous directory alias (ApplyDirectory).
  bool directory_ambiguous_ = false;
  // Who deactivated the user, from the directory (ApplyDirectory).
  std::string inactive_because_;
  // AuthStep::provider_identity of the login.
  bool provider_identity_ = true;
  // When the credential was issued (AuthStep.credential_issued).
  std::optional<absl::Time> credential_issued_;
  // The directory refused the credential as older than its name's current
  // holder (not as deactivated).
  bool credential_predates_name_ = false;
  uint64_t syncs_sent_ = 0;         // Query/Sync/FunctionCall relayed.
  // Executions relayed upstream and not answered yet, per batch (the
  // messages up to a Sync, or one Query or FunctionCall), oldest first.
  // Past kMaxUnanswered the client is not read until answers bring it
  // under kResumeUnanswered: a client that pipelines without reading the
  // answers cannot pile up work, memory and audit events on the proxy
  // (red team: 500,000 Bind/Execute without Sync stalled the worker's other
  // sessions for seconds). An ErrorResponse answers its whole batch, since
  // PostgreSQL skips the rest up to the Sync.
  struct UnansweredBatch {
    int64_t unanswered = 0;
    bool simple = false;  // a Query or FunctionCall: its 'Z' answers it
    bool failed = false;  // PostgreSQL skips the rest of it
    bool closed = false;  // its Sync (or the Query) was relayed
  };
  std::deque<UnansweredBatch> unanswered_batches_;
  // Audit events recorded in the current window: the session's own until
  // login, then its identity's (shared with its other sessions). While the
  // spool is backlogged, a session whose window is past
  // audit.backlogged_session_rate is not read, and its buffered messages
  // wait, until the window is paid for (AuditThrottled).
  std::shared_ptr<AuditWindow> audit_window_ = std::make_shared<AuditWindow>();
  void CountAudit(size_t bytes);
  bool audit_throttled_ = false;
  bool AuditThrottled();
  void ResumeAfterThrottle();
  int64_t unanswered_ = 0;
  bool unanswered_paused_ = false;
  void CountRelayed(char type);
  void AnsweredOne();
  void AnsweredBatchError();
  void AnsweredReady();
  void MaybeResumeAfterAnswers();
  uint64_t syncs_done_ = 0;         // their ReadyForQuery seen.
  Refusals refusals_;
  // Prepared statements (protocol level) that were refused at Parse, with
  // the ErrorResponse a later Bind or Describe of them gets.
  absl::flat_hash_map<std::string, std::string> refused_statements_;
  // Prepared statements (protocol Parse and SQL PREPARE) that were allowed,
  // with their text and the gate generation that judged them: when the
  // policy changes, the next Bind / Describe / EXECUTE judges them again,
  // so a tightened policy also stops statements prepared before it.
  struct Prepared {
    // Protocol Parse: the analysis the gate already made (shared with its
    // cache, nothing copied per statement). SQL PREPARE: its text.
    policy::sql::FactsPtr facts;
    std::string sql;
    uint64_t generation = 0;
    // Its text (for the audit of a refusal).
    std::string text() const {
      if (facts == nullptr) return sql;
      std::string out;
      for (const auto& f : *facts) {
        if (!out.empty()) out += "; ";
        out += f.text;
      }
      return out;
    }
    // What keeping it costs, roughly: its text.
    size_t bytes() const {
      size_t n = sql.size();
      if (facts != nullptr) {
        for (const auto& f : *facts) n += f.text.size();
      }
      return n;
    }
  };
  absl::flat_hash_map<std::string, Prepared> prepared_;
  size_t prepared_bytes_ = 0;
  // Portals bound from known statements: what each runs and the policy
  // generation that last allowed it, so an Execute after a policy change
  // is judged again. Emptied when a transaction ends (PostgreSQL drops
  // protocol portals then).
  absl::flat_hash_map<std::string, Prepared> portals_;
  // The text of the portal whose Execute Judge just refused, for its
  // audit record.
  std::string portal_refused_text_;

  // What an allowed Parse, a Close or an SQL PREPARE / DEALLOCATE changed
  // in what Warden knows (prepared_, refused_statements_, portals_) before
  // PostgreSQL confirmed it (ParseComplete, CloseComplete, CommandComplete
  // PREPARE / DEALLOCATE). At ReadyForQuery whatever PostgreSQL did not
  // confirm (it skipped the message after an earlier error of its batch,
  // or refused it) is undone: Warden forgets only what PostgreSQL forgot.
  // kRefusedParse: the poison that stands for a refused Parse came back as
  // its error (PostgreSQL read it, and dropped the unnamed statement).
  enum class Confirmation {
    kParse,
    kClose,
    kPrepareTag,
    kDeallocateTag,
    kRefusedParse
  };
  struct Tentative {
    Confirmation by;
    // syncs_sent_ when it began: it belongs to the batch that the next
    // Sync (or the Query itself) ends, and is settled at that batch's
    // ReadyForQuery, not at an earlier one that arrives after it began.
    uint64_t batch = 0;
    bool confirmed = false;
    // Before-states, by name; nullopt: absent.
    std::vector<std::pair<std::string, std::optional<Prepared>>> statements;
    std::vector<std::pair<std::string, std::optional<std::string>>> refused;
    std::vector<std::pair<std::string, std::optional<Prepared>>> portals;
  };
  std::deque<Tentative> tentative_;
  // Per Confirmation kind: where its next unconfirmed entry may be.
  size_t confirm_from_[5] = {0, 0, 0, 0, 0};
  Tentative& BeginTentative(Confirmation by);
  // Keep `name`'s state as it is now in `t`, to restore it if undone.
  void NoteStatement(Tentative& t, const std::string& name);
  void NotePortal(Tentative& t, const std::string& name);
  void Confirm(Confirmation by);
  // Whether `name` was refused by a Parse whose outcome is still open.
  bool RefusalPending(const std::string& name) const;
  // At ReadyForQuery: undo what the finished batches left unconfirmed,
  // newest first; later batches' entries stay (PostgreSQL has not answered
  // them yet).
  void SettleTentative();
  warden::v1::SessionEndReason end_reason_ =
      warden::v1::SESSION_END_REASON_UNSPECIFIED;

  // Audit state.
  uint64_t last_audit_sequence_ = 0;  // of the last event Audit() recorded
  bool waiting_audit_ = false;  // sync: the head client message waits
  bool audit_cleared_ = false;  // the head message was judged and recorded
  bool audit_refuse_next_ = false;  // ... but the control plane timed out
  std::string session_id_;       // random, for correlating events
  absl::Time started_at_;
  bool audit_session_started_ = false;
  uint64_t statements_ = 0;
  // Per prepared statement, what its Parse recorded, so that each execution
  // (Bind) records the same, and what its results repeat; bounded by
  // kMaxAuditTemplateBytes.
  static constexpr size_t kMaxAuditTemplateBytes = 16u << 20;
  struct AuditTemplate {
    warden::v1::Statement statement;
    std::shared_ptr<const warden::v1::Statement> summary;
  };
  absl::flat_hash_map<std::string, AuditTemplate> audit_templates_;
  size_t audit_template_bytes_ = 0;
  // Result events (audit.results): the intent RecordStatement recorded
  // for the message being relayed, and the executions awaiting answers.
  Intent intent_;
  ResultTracker results_;
  std::vector<Completion> completions_;
  // The verdict of the last Query / Parse / FunctionCall Judge decided.
  gate::Verdict last_verdict_;
  bool has_verdict_ = false;
};

}  // namespace warden::session

#endif  // WARDEN_DATAPLANE_SESSION_SESSION_H_
