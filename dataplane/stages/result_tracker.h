// ResultTracker pairs each statement the proxy relayed with what the
// database answered, for the audit trail's result-phase events: rows
// returned or affected, how long the database took, and the SQLSTATE.
//
// It follows the protocol, not the SQL: PostgreSQL answers messages in the
// order it received them, an ErrorResponse in the extended protocol makes
// it skip everything up to the next Sync, and ReadyForQuery closes each
// Query, FunctionCall and Sync. So the session tells the tracker every
// Query, FunctionCall, Parse, Bind, Describe, Execute, Close and Sync as it
// relays it, and every answer as it forwards it (ParseComplete,
// BindComplete, CloseComplete, RowDescription or NoData for a Describe,
// CommandComplete, DataRow, PortalSuspended, EmptyQueryResponse,
// ErrorResponse, ReadyForQuery), and gets back one Completion per
// execution whose intent event was recorded. Each message that PostgreSQL
// answers waits in one queue, so an ErrorResponse is blamed on the message
// it answers: a Bind whose parameters PostgreSQL refused (22P02) fails its
// own execution, and the executions it made PostgreSQL skip are "not run"
// (they used to take its error as their own).
//
// An execution is a simple Query (all its statements: rows summed, the
// first error's SQLSTATE), a FunctionCall, or the executions of one bound
// portal (a portal fetched in parts, as JDBC does with a fetch size, is one
// execution whose rows add up over its Execute messages).
//
// It also keeps, for every execution (recorded or not), its portal, the
// statement it was bound from, its result formats and the RowDescription
// that describes its rows (stages::ExecutionRecord), and says which
// execution the backend message being forwarded answers (answering()),
// for the stages that read the answers.
//
// The session's Correlator keeps one, always on (OnFrontend, OnBackend);
// the audit stage records the completions.
//
// Not thread-safe: one per session, on the session's loop thread.
#ifndef WARDEN_DATAPLANE_STAGES_RESULT_TRACKER_H_
#define WARDEN_DATAPLANE_STAGES_RESULT_TRACKER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/stages/stage.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::dataplane::stages {

class ResultTracker {
 public:
  // A client message as it is relayed, with the intent recorded for it
  // (empty: none, or it was replaced by a substitute): one of the calls
  // below by its type.
  void OnFrontend(char type, absl::string_view body, Intent intent,
                  absl::Time now, std::vector<Completion>* out);
  // A database message as it is forwarded (after the first
  // ReadyForQuery): one of the calls below by its type.
  void OnBackend(char type, absl::string_view body, absl::Time now,
                 std::vector<Completion>* out);

  // Client messages, in the order they are relayed upstream.
  void Query(Intent intent, absl::Time now);
  void FunctionCall(Intent intent, absl::Time now);
  void Parse(absl::string_view statement = {});
  // `result_formats`: the Bind's result format codes.
  void Bind(absl::string_view portal, Intent intent, absl::Time now,
            std::vector<Completion>* out, absl::string_view statement = {},
            std::vector<int16_t> result_formats = {});
  // kind 'S' (statement) or 'P' (portal).
  void Describe(char kind = 'S', absl::string_view name = {});
  // A SQL cursor's Execute that recorded its own intent (there is no Bind):
  // its portal is followed from now on, as if bound for it.
  void Cursor(absl::string_view portal, Intent intent, absl::Time now,
              std::vector<Completion>* out);
  void Execute(absl::string_view portal);
  // kind 'P' (portal) or 'S' (statement; nothing to do).
  void Close(char kind, absl::string_view name, std::vector<Completion>* out);
  void Sync();

  // Upstream messages, in the order they are forwarded.
  // ParseComplete, BindComplete, CloseComplete.
  void ParseComplete() { Answered(Kind::kParse); }
  void BindComplete() { Answered(Kind::kBind); }
  void CloseComplete() { Answered(Kind::kClose); }
  // A RowDescription (`type` 'T'; a Describe's last answer, or a Query's
  // statement's) or NoData ('n'; a Describe's).
  void Described(char type, absl::string_view body);
  void DataRow();
  void CommandComplete(absl::string_view tag, absl::Time now,
                       std::vector<Completion>* out);
  void PortalSuspended(absl::Time now, std::vector<Completion>* out);
  void EmptyQuery(absl::Time now, std::vector<Completion>* out);
  void Error(absl::string_view sqlstate, absl::Time now,
             std::vector<Completion>* out);
  void ReadyForQuery(absl::Time now, std::vector<Completion>* out);

  // The session ended: whatever is still open completes, marked with `why`.
  void Finish(absl::string_view why, absl::Time now,
              std::vector<Completion>* out);

  // The execution the last backend message given to OnBackend answers
  // (null: none); valid until the next call.
  const ExecutionRecord* answering() const { return answering_; }
  // The execution a portal runs, if followed (tests, and stages that look
  // ahead of the answers).
  const ExecutionRecord* Portal(absl::string_view name) const;

  // Executions awaiting an answer (for tests and bounds).
  size_t pending() const { return queue_.size(); }
  size_t portals() const { return portals_.size(); }
  size_t statements() const { return statements_.size(); }

  // Rows a CommandComplete tag reports ("SELECT 3", "INSERT 0 3",
  // "UPDATE 2"), or -1 when the command has no row count ("CREATE TABLE").
  static int64_t RowsOfTag(absl::string_view tag);

  // More named portals than this are not followed (a client that keeps
  // thousands of portals open does not make the proxy keep thousands of
  // records); their executions still complete, without rows in parts.
  static constexpr size_t kMaxPortals = 256;
  // Prepared statements whose RowDescription is kept (beyond: not kept,
  // their portals are kNo unless described themselves).
  static constexpr size_t kMaxStatements = 1024;

 private:
  // One execution; shared by the queued messages that feed it.
  struct Exec : ExecutionRecord {
    absl::Time started;
    absl::Time last;       // of the last answer.
    int64_t rows = 0;
    std::string sqlstate;  // first error.
    int pending = 0;       // queued Execute messages for it.
    bool suspended = false;
    bool open = true;      // the portal still exists on the client's side.
    bool done = false;
    // name_changes_ when it was bound.
    uint64_t bound_at = 0;
    // As new, keeping what the strings and vectors hold allocated.
    void Reset();
  };
  // kQuery, kFunctionCall and kExecute are answered by their results;
  // the others by one message each (or an error).
  enum class Kind {
    kQuery,
    kFunctionCall,
    kExecute,
    kParse,
    kBind,
    kDescribe,
    kClose
  };
  static bool AnsweredByOneMessage(Kind kind) {
    return kind == Kind::kParse || kind == Kind::kBind ||
           kind == Kind::kDescribe || kind == Kind::kClose;
  }
  struct Entry {
    Kind kind;
    uint64_t batch;             // the Sync / Query / FunctionCall ending it.
    std::shared_ptr<Exec> exec;  // null: not followed.
    int64_t data_rows = 0;
    // A Describe's kind and name, and name_changes_ when it was sent
    // (allocated for Describe entries only).
    char described_kind = 0;
    struct Described {
      std::string name;
      uint64_t names_at = 0;
    };
    std::unique_ptr<const Described> described;
  };

  // The head entry if it belongs to the batch now being answered.
  Entry* Head();
  // The head entry for a result (Execute, Query, FunctionCall): messages
  // before it that are answered by one message were answered (PostgreSQL
  // answers in order), so they are passed over.
  Entry* ResultHead();
  // The head entry a result belongs to, without passing over anything
  // (a notice or COPY message may come before a one-message answer).
  Entry* PeekResult();
  // The head is answered by one message of its kind.
  void Answered(Kind kind);
  // Follows `portal` as `intent`'s execution (Bind, Cursor): its slot in
  // portals_, or null when too many portals are followed.
  const std::shared_ptr<Exec>* Follow(absl::string_view name, Intent intent,
                                      absl::Time now,
                                      std::vector<Completion>* out);
  void Complete(Exec* exec, absl::Time now, std::string sqlstate,
                std::string note,
                std::vector<Completion>* out);
  void DropPortal(const std::string& name, std::vector<Completion>* out);
  // Executions are reused once nothing else refers to them (one is kept
  // spare), so that a session does not allocate one per statement.
  std::shared_ptr<Exec> NewExec();
  void Recycle(std::shared_ptr<Exec> exec);
  // Pops the head entry.
  void PopFront();
  // A RowDescription body, shared with the last one when it is the same.
  std::shared_ptr<const std::string> Description(absl::string_view body);
  // The execution the message being forwarded answers.
  void Answering(std::shared_ptr<Exec> exec);
  // Pops the head Execute entry.
  void PopExecute();

  std::deque<Entry> queue_;
  absl::flat_hash_map<std::string, std::shared_ptr<Exec>> portals_;
  uint64_t sent_ = 0;  // batches relayed (Query, FunctionCall, Sync).
  uint64_t done_ = 0;  // their ReadyForQuery seen.
  std::string batch_error_;  // SQLSTATE of the batch being answered.
  // Prepared statements' RowDescription (empty: NoData), from the answers
  // to their Describe.
  absl::flat_hash_map<std::string, std::shared_ptr<const std::string>>
      statements_;
  // What answering() returns, and the reference that keeps it alive when
  // its last queue entry was popped for this message.
  const ExecutionRecord* answering_ = nullptr;
  std::shared_ptr<Exec> answering_keep_;
  // Counts what may give a statement name to another statement (Parse,
  // Close of a statement, SQL PREPARE and DEALLOCATE): a statement's
  // Describe answer describes only portals bound, and is kept only, when
  // no name changed since the Describe was sent (otherwise the answer may
  // be an older statement's of that name).
  uint64_t name_changes_ = 0;
  std::shared_ptr<Exec> spare_;
  std::shared_ptr<const std::string> last_description_;
};

}  // namespace warden::dataplane::stages

#endif  // WARDEN_DATAPLANE_STAGES_RESULT_TRACKER_H_
