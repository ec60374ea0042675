// Stages: what Warden does to a statement between the client's codec and
// the database's, one concern each (judging, recording, later approving
// and masking), in a chain the session runs every relayed message through.
//
// A stage sees each validated frontend message of the relay, in order,
// and each backend message. It lets a message through (kContinue),
// refuses it (kReplaced: the session relays a substitute that fails in
// PostgreSQL and rewrites its error into the refusal, see
// session/refusals.h), or holds it (kHold: the message stays in the
// client's buffer, the client is not read, and nothing behind it moves
// until the stage calls StageCallbacks::Resume; then the chain runs the
// message again from the stage that held it, which decides).
//
// A stage owns no socket and does no I/O; timers and posted work go
// through the callbacks' event loop. Each stage has a unit test with fake
// callbacks (tests/unit/dataplane/stages/).
#ifndef WARDEN_DATAPLANE_STAGES_STAGE_H_
#define WARDEN_DATAPLANE_STAGES_STAGE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/gate/gate.h"
#include "proto/warden/v1/audit.pb.h"
#include "proto/warden/v1/session.pb.h"

namespace warden::dataplane::net {
class EventLoop;
}

namespace warden::dataplane::stages {

enum class StageResult {
  kContinue,  // relay the message (or let the next stage decide).
  kReplaced,  // refused: Execution::refusal says with what.
  kHold,      // not yet: the stage calls Resume() when it has decided.
};

// One validated frontend message (type byte and body, without the
// length); the bytes belong to the session's buffer.
// `shielded`: the session replaced it with its own substitute before the
// chain (a portal PostgreSQL may hold as freed memory, see
// Session::ProcessClient); stages only keep their bookkeeping in step.
struct Frontend {
  char type = 0;
  absl::string_view body;
  bool shielded = false;
};

// One validated backend message. `refusal_taken` is set on an
// ErrorResponse that answered one of Warden's substitutes (the client gets
// the refusal instead); `parse`: the substitute stood for a refused Parse.
struct Backend {
  char type = 0;
  absl::string_view body;
  bool refusal_taken = false;
  bool refused_parse = false;
};

// A refusal: the ErrorResponse the client gets for the message, and
// whether the substitute stands for a Parse whose name PostgreSQL drops
// (see Refusals::WriteSubstitute).
struct Refusal {
  std::string error;
  bool parse = false;
};

// The recorded intent event an execution answers. sequence 0: not
// recorded (a refused or unaudited message), so no completion is reported
// for it, but its answers are still followed to keep the pairing right.
struct Intent {
  uint64_t sequence = 0;
  // What the result event repeats of the intent (tags, tables, decision);
  // shared, not copied, between the executions of one prepared statement.
  std::shared_ptr<const warden::v1::Statement> summary;
};

// What the session's correlator knows of one execution (a simple Query, a
// FunctionCall, or the executions of one bound portal) while the database
// answers it: the stages that read answers (masking, issue 18) learn here
// which statement a DataRow answers and what its columns are.
struct ExecutionRecord {
  // Where its RowDescription came from.
  enum class Described {
    kNo,         // not seen: the client never asked (nor did a Query send
                 // one); a stage that needs the columns describes the
                 // portal itself, or fails closed.
    kQuery,      // a simple Query's own, for the statement whose rows
                 // follow (each statement of a multi-statement Query
                 // replaces it).
    kPortal,     // the answer to a Describe of its portal: formats
                 // included.
    kStatement,  // the answer to a Describe of the prepared statement it
                 // was bound from, before this Bind: the formats are
                 // `result_formats`. PostgreSQL may have re-prepared the
                 // name since (DEALLOCATE and PREPARE run by dynamic SQL
                 // inside a function are invisible on the wire), so a
                 // guard must not trust it alone.
  };
  // The intent event recorded for it (sequence 0: none). It moves into
  // the execution's Completion when the execution completes.
  Intent intent;
  // Its portal ("" the unnamed portal, and for a Query or FunctionCall)
  // and the prepared statement the portal was bound from.
  std::string portal;
  std::string statement;
  // A RowDescription body as the database sent it; null when `described`
  // is kNo, empty when the database answered NoData.
  std::shared_ptr<const std::string> row_description;
  Described described = Described::kNo;
  // The result format codes of its Bind (none: all text; one: for all
  // columns; else one per column), as PostgreSQL reads them.
  std::vector<int16_t> result_formats;
};

// An execution the database has answered (or that ended unanswered),
// for the result event of its intent.
struct Completion {
  Intent intent;
  int64_t rows = 0;
  // From relaying the message to the database's last answer for it.
  absl::Duration duration;
  // "00000" on success; the database's SQLSTATE on error; empty when the
  // database never answered (the session ended first).
  std::string sqlstate;
  // Why there is no ordinary result, e.g. "not run: an earlier message of
  // its pipeline failed (42P01)".
  std::string note;
};

// What the stages know of the message in flight, shared along the chain:
// an earlier stage's verdict is what a later one records. Reset for each
// new message; kept across a hold.
struct Execution {
  // The policy snapshot of this batch of client messages (null: no policy
  // is configured).
  const gate::Gate* gate = nullptr;
  // The verdict the policy stage decided (Query, Parse, FunctionCall, and
  // an Execute of a portal refused under a newer policy).
  std::optional<gate::Verdict> verdict;
  // For an Execute refused under a newer policy: what its portal runs.
  std::string refused_portal_text;
  // For an Execute of a SQL cursor (DECLARE, not a protocol Bind): its
  // DECLARE, so that the execution has an intent event of its own.
  std::string cursor_text;
  // Set by the first stage that refused the message.
  std::optional<Refusal> refusal;
  // The intent event recorded for it (the audit stage, with results on):
  // the session's correlator follows its execution from here and reports
  // its Completion (StageCallbacks::completions()).
  Intent intent;
};

// Where the session's batches are (the correlator's counters): a batch is
// the messages up to a Sync, or one Query or FunctionCall. Stages see a
// ReadyForQuery after it was counted (syncs_done and pending_syncs
// include it).
struct Pipeline {
  uint64_t syncs_sent = 0;  // batches relayed.
  uint64_t syncs_done = 0;  // their ReadyForQuery seen.
  int pending_syncs = 0;    // relayed and not answered by ReadyForQuery.
  bool unsynced = false;    // extended messages since the last Sync.
  bool executed_unsynced = false;  // an Execute since the last Sync.
};

// Who and where, for stages that judge or record.
struct SessionFacts {
  const policy::engine::Subject* subject = nullptr;
  std::string environment;
  std::string database;
  std::string peer_address;  // for logs.
};

// What a stage may ask of its session. The session implements it.
class StageCallbacks {
 public:
  virtual ~StageCallbacks() = default;
  virtual Execution& execution() = 0;
  virtual const Pipeline& pipeline() const = 0;
  virtual const SessionFacts& facts() const = 0;
  // Refuses the message in flight with `error` (an encoded ErrorResponse);
  // the stage then returns kReplaced. The first refusal of a message wins.
  virtual void Refuse(std::string error, bool parse = false) = 0;
  // Sends bytes to the client now (e.g. a NoticeResponse while held).
  virtual void SendToClient(absl::string_view bytes) = 0;
  // Runs the held message through the chain again, from the stage that
  // held it. Loop thread only.
  virtual void Resume() = 0;
  // Ends the session with a FATAL `sqlstate` error (a bound exceeded, a
  // user deactivated); the chain stops there.
  virtual void Fail(absl::string_view sqlstate, absl::string_view message,
                    warden::v1::SessionEndReason reason) = 0;
  // The session has ended.
  virtual bool ended() const = 0;
  virtual net::EventLoop& loop() = 0;
  // The time, read once per batch of messages the session processes.
  virtual absl::Time Now() = 0;
  // Executions with a recorded intent that the database answered (or
  // that ended unanswered), in order, not yet taken: the correlator pairs
  // every message the session relays with its answers, and the audit
  // stage takes these to record their results.
  virtual std::vector<Completion>* completions() = 0;
  // During Stage::OnBackend: the execution the backend message answers
  // (its rows, its RowDescription, its CommandComplete, its error; a
  // COPY's data; a notice raised while it ran), or null when the message
  // answers none (ParseComplete, ReadyForQuery, a ParameterStatus).
  virtual const ExecutionRecord* answering() const = 0;
};

class Stage {
 public:
  virtual ~Stage() = default;
  // A frontend message. `resumed`: this stage held it and called Resume().
  virtual StageResult OnFrontend(const Frontend& m, bool resumed) = 0;
  // A later stage refused a message this stage let through (`refusal`
  // says with what): e.g. a Parse the audit trail could not record.
  virtual void OnRefusedLater(const Frontend& m, const Refusal& refusal) {}
  // A backend message, before the client gets it.
  virtual void OnBackend(const Backend& m) {}
  // The client cancelled (CancelRequest): a held message is withdrawn.
  virtual void OnCancel() {}
  // A new policy is in force (also while the session is idle).
  virtual void OnPolicy(const gate::Gate& gate) {}
  // The session ended.
  virtual void OnEnd(absl::string_view why) {}
};

}  // namespace warden::dataplane::stages

#endif  // WARDEN_DATAPLANE_STAGES_STAGE_H_
