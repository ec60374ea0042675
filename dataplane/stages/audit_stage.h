// AuditStage: the statement's record in the audit trail, before it runs.
//
// Each Query, Parse, Bind (every execution of a prepared statement) and
// FunctionCall is recorded with the policy stage's verdict (intent
// event); a message that would run but cannot be recorded is refused
// (53000): no statement runs unrecorded. In sync mode the message is held
// until the control plane acknowledged its event, one timer per hold; if
// the acknowledgement does not come in time, the held message is refused.
// With results on, the answers to each recorded execution become a result
// event (rows, duration, SQLSTATE) once the database finished it.
#ifndef WARDEN_DATAPLANE_STAGES_AUDIT_STAGE_H_
#define WARDEN_DATAPLANE_STAGES_AUDIT_STAGE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/audit/sink.h"
#include "dataplane/stages/stage.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::dataplane::stages {

// Where a session's events go: the session fills in who and where, and
// counts what it recorded against its budget.
class AuditTrail {
 public:
  virtual ~AuditTrail() = default;
  virtual warden::v1::AuditEvent NewEvent(
      warden::v1::AuditEventKind kind) const = 0;
  // The event's sequence once it is on disk; an error when the spool is
  // full or failing. `*event` is left as recorded (stamped, bounded, maybe
  // stripped), so that the caller may move its fields on.
  virtual absl::StatusOr<uint64_t> Record(warden::v1::AuditEvent* event) = 0;
};

struct AuditStageOptions {
  // Result events too (audit.results).
  bool results = false;
  // Sync mode: the acknowledgements statements wait for, and how long;
  // null in async mode.
  audit::AuditAcks* sync = nullptr;
  int sync_timeout_ms = 2000;
  // Result events that could not be recorded (the statement had run).
  std::atomic<uint64_t>* results_lost = nullptr;
};

class AuditStage : public Stage {
 public:
  AuditStage(StageCallbacks* callbacks, AuditTrail* trail,
             AuditStageOptions options);
  ~AuditStage() override;

  StageResult OnFrontend(const Frontend& m, bool resumed) override;
  void OnBackend(const Backend& m) override;
  // The client cancelled while its statement is held: it is withdrawn
  // (refused with 57014, never run).
  void OnCancel() override;
  void OnEnd(absl::string_view why) override;

  // Statements recorded (for the session's end event).
  uint64_t statements() const { return statements_; }
  bool holding() const { return waiting_; }

 private:
  // Records a Query, Parse, Bind or FunctionCall (and an Execute refused
  // under a newer policy); returns the sequence, 0 when nothing was
  // recorded. A message that would run and cannot be recorded is refused.
  uint64_t RecordStatement(const Frontend& m);
  // Records `event`; its sequence, 0 (logged) when it is not on disk.
  uint64_t Record(warden::v1::AuditEvent* event);
  void EraseTemplate(const std::string& key);
  // Sync mode: waits for `sequence`'s acknowledgement.
  void Hold(uint64_t sequence);
  enum class HoldEnd { kAcknowledged, kTimedOut, kCancelled };
  void EndHold(HoldEnd how);
  // Result events for `completions` (taken: the vector is emptied).
  void RecordResults(std::vector<Completion>& completions);
  // A held statement that will not run (withdrawn, timed out, its session
  // ended): a result event for its intent says so, results on or off.
  void RecordNotRun(absl::string_view sqlstate, std::string note);

  StageCallbacks* callbacks_;
  AuditTrail* trail_;
  const AuditStageOptions options_;
  // What a result event would repeat of an intent is kept (results on, or
  // sync mode, where a held statement may end up not run).
  const bool summaries_;
  net::EventLoop* loop_;
  uint64_t statements_ = 0;
  // Per prepared statement, what its Parse recorded, so that each execution
  // (Bind) records the same, and what its results repeat; bounded.
  struct Template {
    warden::v1::Statement statement;
    std::shared_ptr<const warden::v1::Statement> summary;
  };
  absl::flat_hash_map<std::string, Template> templates_;
  size_t template_bytes_ = 0;
  // The intent the message in flight recorded (kept across a hold).
  Intent intent_;
  // Sync hold: waiting for the acknowledgement; its timer; how it ended
  // (anything but acknowledged: the held message is refused).
  bool waiting_ = false;
  // A message is held (from Hold until it comes back resumed).
  bool held_ = false;
  // Why the last Record failed (for the refusal's text).
  absl::Status last_error_;
  uint64_t hold_timer_ = 0;
  HoldEnd hold_end_ = HoldEnd::kAcknowledged;
  // Posted callbacks check it: the stage may be gone when they run.
  std::shared_ptr<AuditStage*> self_ = std::make_shared<AuditStage*>(this);
};

}  // namespace warden::dataplane::stages

#endif  // WARDEN_DATAPLANE_STAGES_AUDIT_STAGE_H_
