// Correlator: where the session's conversation with PostgreSQL stands, in
// protocol order. PostgreSQL answers messages in the order it got them,
// skips the rest of an extended-query batch after an error, and ends each
// batch (the messages up to a Sync, or one Query or FunctionCall) with a
// ReadyForQuery; the correlator follows that to know
// - the batches relayed and answered (stages::Pipeline, what the stages
//   read: which batch a refusal or a tentative change belongs to);
// - the executions relayed and not answered yet, for backpressure: past
//   kMaxUnanswered the client is not read until answers bring it under
//   kResumeUnanswered (red team: 500,000 Bind/Execute without Sync
//   stalled the worker's other sessions for seconds);
// - where each portal came from, for the portal shield: PostgreSQL 15 may
//   hold a portal as freed or half-made memory (a Query that failed inside
//   a transaction block leaves the unnamed portal pointing at freed text;
//   a Bind that failed leaves its portal half made), and an Execute or
//   Describe of it crashes the backend. Such portals are answered by
//   Warden (UnsafePortal), not passed on.
//
// - which execution each answer belongs to (stages::ResultTracker, always
//   on): every message relayed and every answer forwarded, so that each
//   execution with a recorded intent completes with its rows, duration
//   and SQLSTATE (completions(), taken by the audit stage), an error
//   blamed on the message it answers.
//
// No I/O; one per session.
#ifndef WARDEN_DATAPLANE_SESSION_CORRELATOR_H_
#define WARDEN_DATAPLANE_SESSION_CORRELATOR_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/stages/result_tracker.h"
#include "dataplane/stages/stage.h"

namespace warden::dataplane::session {

class Correlator {
 public:
  // Unanswered executions past which the client is not read, and the
  // count under which reading resumes. The resume point is far above what
  // PostgreSQL may hold back unflushed (its 8 KiB output buffer: at most
  // 8192 / 14 = 585 answers of the smallest kind) until a Sync or Flush
  // arrives, so a client that pipelines and reads never waits on it.
  static constexpr int64_t kMaxUnanswered = 10000;
  static constexpr int64_t kResumeUnanswered = 5000;
  // Portals whose origin is kept (a session with more open at once loses
  // the oldest knowledge: PostgreSQL's transaction end drops them anyway).
  static constexpr size_t kMaxPortals = 4096;

  const stages::Pipeline& pipeline() const { return pipeline_; }
  // Parse/Bind/Describe/Execute/Close since the last Sync: what PostgreSQL
  // may skip after an error, a Query with it.
  bool extended_since_sync() const { return extended_since_sync_; }
  // Query/Sync/FunctionCall relayed and not answered, or extended
  // messages without a Sync: a statement may be running.
  bool busy() const {
    return pipeline_.pending_syncs > 0 || pipeline_.unsynced;
  }

  // Client messages, validated, before the stages: notes where portals
  // come from, and returns the portal an Execute, Describe or Close names
  // if PostgreSQL may hold it as freed memory.
  std::optional<std::string> UnsafePortal(char type, absl::string_view body);
  // A client message relayed (as is or by its substitute), with the
  // intent recorded for it (stages::Execution::intent; empty: none).
  void Relayed(char type, absl::string_view body = {},
               stages::Intent intent = {},
               absl::Time now = absl::InfinitePast());

  // Backend messages after the first ReadyForQuery.
  // Any of them, before the stages see it: paired with its execution.
  void Forwarded(char type, absl::string_view body, absl::Time now) {
    results_.OnBackend(type, body, now, &completions_);
  }
  // One execution answered (CommandComplete, PortalSuspended,
  // EmptyQueryResponse).
  void Answered();
  // An ErrorResponse: the rest of its extended batch is skipped.
  void Failed();
  // ReadyForQuery (`idle`: status 'I', the transaction ended).
  void Ready(bool idle);

  // The session ended: what was still running completes, marked `why`.
  void Finish(absl::string_view why, absl::Time now) {
    results_.Finish(why, now, &completions_);
  }
  // Executions with a recorded intent that completed, not yet taken.
  std::vector<stages::Completion>* completions() { return &completions_; }
  // The execution the backend message last Forwarded answers (null: none).
  const stages::ExecutionRecord* answering() const {
    return results_.answering();
  }

  // Backpressure. Whether the client may be read now; if not, the
  // correlator remembers that it paused it.
  bool MayRead();
  // After answers: the client was paused and may be read again (once).
  bool TakeResume();
  int64_t unanswered() const { return unanswered_; }

 private:
  void NoteOrigin(const std::string& portal, bool tainted);
  bool PortalSafe(absl::string_view name) const;
  // After answers: whether a paused client may be read again.
  void NoteAnswers();

  stages::Pipeline pipeline_;
  bool extended_since_sync_ = false;

  // Executions relayed and not answered yet, per batch, oldest first. An
  // ErrorResponse answers its whole batch, since PostgreSQL skips the rest
  // up to the Sync.
  struct UnansweredBatch {
    int64_t unanswered = 0;
    bool simple = false;  // a Query or FunctionCall: its 'Z' answers it
    bool failed = false;  // PostgreSQL skips the rest of it
    bool closed = false;  // its Sync (or the Query) was relayed
  };
  std::deque<UnansweredBatch> unanswered_batches_;
  int64_t unanswered_ = 0;
  bool paused_ = false;
  bool resume_ = false;

  // Where each portal came from: the batch of its Bind (syncs_sent then),
  // and whether that batch failed or a simple Query replaced it.
  struct PortalOrigin {
    uint64_t batch = 0;
    bool tainted = false;
  };
  absl::flat_hash_map<std::string, PortalOrigin> portal_origins_;
  // An ErrorResponse since the last ReadyForQuery.
  bool batch_had_error_ = false;

  // Which execution each answer belongs to.
  stages::ResultTracker results_;
  std::vector<stages::Completion> completions_;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_CORRELATOR_H_
