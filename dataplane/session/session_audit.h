// SessionAudit: a session's audit events, with no I/O of its own: what
// every event of the session shares, staging them in the audit sink, the
// hold on the upstream until they are written, and the audit budget of
// the identity while the spool is backlogged.
//
// - Events are staged (AuditSink::Stage), not written one by one: the
//   worker writes every staged event of its batch at once
//   (AfterAuditWrite). From the first staged event until that write is
//   done, write_pending() holds: the session sends nothing upstream (what
//   it would send waits in its buffer), so that no statement runs before
//   its event is on disk. The session calls Written() when the write is
//   done (and fails if it failed).
// - Once the chain runs (ChainBuilt), what every event shares (identity,
//   environment, session id) is encoded once and sent with each event's
//   own part; it is encoded again when the directory stage changes the
//   identity (the count ChainBuilt was given). Before that, events carry
//   the fields themselves (NewEvent).
// - While the spool is more than half full and the identity's events are
//   past audit.backlogged_session_rate, Throttled() says so and asks the
//   session to resume after the window is paid for; the session does not
//   read its client meanwhile.
//
// Not thread-safe: one per session, on its loop thread.
#ifndef WARDEN_DATAPLANE_SESSION_SESSION_AUDIT_H_
#define WARDEN_DATAPLANE_SESSION_SESSION_AUDIT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/audit/sink.h"
#include "dataplane/session/audit_budget.h"
#include "proto/warden/v1/audit.pb.h"
#include "proto/warden/v1/session.pb.h"

namespace warden::dataplane::session {

class SessionAudit {
 public:
  // What the session does for its audit (its event loop).
  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // Calls SessionAudit::Written (through the session) once this batch's
    // staged events are written (AfterAuditWrite); once per batch.
    virtual void AwaitAuditWrite() = 0;
    // Resumes reading the client `delay` from now (a throttle ends).
    virtual void ResumeAfter(absl::Duration delay) = 0;
  };

  struct Context {
    // Where events are staged; null when audit is off.
    audit::AuditSink* recorder = nullptr;
    // audit.backlogged_session_rate (0: no limit), and the count of
    // sessions throttled for it.
    int64_t backlogged_session_rate = 0;
    std::atomic<uint64_t>* sessions_throttled = nullptr;
    // The listener's environment, the session's id and its identity (the
    // session's, changed by the login and the directory stage), all
    // outliving this; the peer address for logs.
    std::string environment;
    std::string session_id;
    const warden::v1::Identity* identity = nullptr;
    std::string peer_address;
  };

  SessionAudit(Context context, Callbacks* callbacks)
      : context_(std::move(context)), callbacks_(callbacks) {}

  // A new event of this session. Before the chain runs it carries the
  // shared fields itself; after, Record adds them.
  warden::v1::AuditEvent NewEvent(warden::v1::AuditEventKind kind) const;
  // Stages `event` (the recorder must be set), counts it against the
  // audit window, and asks for the batch's write once. A statement's
  // intent whose record is larger than what its message paid before it
  // was read (Throttled's `next_bytes`) by more than kUnpricedBytes, and
  // that the identity's budget does not cover (the spool backlogged), is
  // not recorded: Unavailable (retry later), and the statement is refused (red
  // team: a Bind repeats its prepared statement's text, a cursor's Execute
  // its DECLARE's; one identity filled the spool with them in 2 s).
  // `*event` is left as recorded, for the caller to move its fields on.
  absl::StatusOr<uint64_t> Record(warden::v1::AuditEvent* event);
  static constexpr size_t kUnpricedBytes = 1024;
  // Record for session events: true when audit is off or the event is
  // staged, false (logged) when the spool refused it.
  bool Audit(warden::v1::AuditEvent event);

  // The chain runs from now on; `identity_changes` (may be empty) counts
  // the changes of the identity (the directory stage's, the only one that
  // changes it once the chain runs).
  void ChainBuilt(std::function<uint64_t()> identity_changes) {
    chain_built_ = true;
    identity_changes_ = std::move(identity_changes);
  }
  // The events counted from now on are the identity's (`window`, shared
  // with its other sessions), no longer the session's own.
  void set_window(std::shared_ptr<AuditWindow> window) {
    window_ = std::move(window);
  }

  // The session's last event (SESSION_END): why it ended, how many
  // statements it ran, how long it lasted. Recorded whatever the budget
  // (the session is over either way).
  void RecordEnd(warden::v1::SessionEndReason reason, absl::string_view why,
                 uint64_t statements, absl::Duration lasted);

  // Events are staged and not yet written: nothing may go upstream.
  bool write_pending() const { return write_pending_; }
  // The batch's write is done (the session acts on its status).
  void Written() { write_pending_ = false; }

  // Whether the session must stop reading its client for the audit
  // budget, before a message that records about `next_bytes` (a Query's
  // or Parse's length; 0 for the others); when it starts, the session is
  // asked to resume later.
  bool Throttled(size_t next_bytes = 0);
  // Throttled before the client's message `next` (its bytes so far, from
  // its header on): a Query or Parse pays for its length (its text is
  // recorded, up to an event's limit) before the rest of it is read.
  bool ThrottledBefore(absl::string_view next) {
    return Throttled(RecordedBytes(next));
  }
  static size_t RecordedBytes(absl::string_view next);
  // How long the identity must wait before it records more (its budget
  // spent while the spool is backlogged; at least 1 ms), or nullopt;
  // nothing else happens (a login asks this before it records).
  std::optional<absl::Duration> Wait();
  bool throttled() const { return throttled_; }
  // The throttle's wait is over (or the session resumes anyway).
  void Unthrottle() { throttled_ = false; }

 private:
  // The throttle for a message of `next_bytes`, if any, and now.
  std::optional<Throttle> Check(size_t next_bytes, absl::Time now);
  void AddSharedFields(warden::v1::AuditEvent* event) const;
  // The encoded shared fields for the current identity; null when they
  // cannot be encoded (whole events are recorded then).
  const std::string* SharedEventFields();

  const Context context_;
  Callbacks* const callbacks_;
  bool chain_built_ = false;
  std::function<uint64_t()> identity_changes_;
  std::shared_ptr<AuditWindow> window_ = std::make_shared<AuditWindow>();
  bool write_pending_ = false;
  bool throttled_ = false;
  // What the message being processed paid for before it was read.
  size_t prepaid_bytes_ = 0;
  bool shared_fields_built_ = false;
  uint64_t shared_fields_version_ = 0;
  std::optional<std::string> shared_fields_;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_SESSION_AUDIT_H_
