// PolicyStage: judges each statement with the batch's policy snapshot and
// keeps what that takes across messages: the prepared statements and
// portals it allowed (judged again when the policy changes), the names it
// refused (so Bind, Describe and SQL EXECUTE of them are refused too), and
// what PostgreSQL has not confirmed yet (undone if PostgreSQL skipped it).
//
// Client messages: Query, Parse, Bind, Execute, Describe, Close and
// FunctionCall are judged or tracked; a refusal goes to the session
// (StageCallbacks::Refuse), the verdict to the execution for the audit
// stage. Backend messages: ParseComplete, CloseComplete, the PREPARE /
// DEALLOCATE tags and a refused Parse's error confirm what was tracked;
// ReadyForQuery settles the batch.
#ifndef WARDEN_DATAPLANE_STAGES_POLICY_STAGE_H_
#define WARDEN_DATAPLANE_STAGES_POLICY_STAGE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "dataplane/gate/gate.h"
#include "dataplane/stages/stage.h"

namespace warden::dataplane::stages {

// PostgreSQL knows a prepared statement by the first NAMEDATALEN-1 bytes
// of its name; so does Warden (which also bounds what it keeps per name).
std::string StatementKey(absl::string_view name);

// The statement name of a validated Bind body (portal\0statement\0...).
absl::string_view BindStatement(absl::string_view body);

class PolicyStage : public Stage {
 public:
  // `keep_verdicts`: put each verdict into the execution (only the audit
  // stage reads it; no copy per statement without one).
  PolicyStage(StageCallbacks* callbacks, bool keep_verdicts)
      : callbacks_(callbacks), keep_verdicts_(keep_verdicts) {}

  StageResult OnFrontend(const Frontend& m, bool resumed) override;
  void OnRefusedLater(const Frontend& m, const Refusal& refusal) override;
  void OnBackend(const Backend& m) override;

  // For tests and bounds: what the stage keeps.
  size_t prepared_count() const { return prepared_.size(); }
  size_t refused_count() const { return refused_statements_.size(); }
  size_t portal_count() const { return portals_.size(); }
  size_t tentative_count() const { return tentative_.size(); }

 private:
  // Judge decides a frontend message (Query, Parse, Bind, Describe,
  // Execute, FunctionCall) and refuses it through the callbacks when it
  // must not run.
  void Judge(const gate::Gate& gate, char type, absl::string_view body);
  // `v`, or Warden's built-in denial no-pipelined-lexing when `sql` (of a
  // Query or Parse) holds a backslash or a non-ASCII byte and an earlier
  // statement of the session may still change how PostgreSQL reads it.
  gate::Verdict SettledLexing(const gate::Gate& gate, gate::Verdict v,
                              absl::string_view sql) const;
  void Keep(const gate::Verdict& v) {
    if (keep_verdicts_) callbacks_->execution().verdict = v;
  }

  // Prepared statements refused at Parse or by SQL PREPARE (one namespace
  // in PostgreSQL), so that Bind, Describe and SQL EXECUTE of them get the
  // same refusal.
  void RememberRefused(std::string name, std::string error);
  // For an allowed message: the refusal of a prepared statement it
  // EXECUTEs, if any (judging statements prepared under an older policy
  // again on the way).
  const std::string* RefusedExecute(const gate::Gate& gate,
                                    const gate::Verdict& v);
  // Records PREPAREs of a message (refused when `error` is set) and, for
  // allowed messages, DEALLOCATEs.
  void TrackSqlPrepares(const gate::Verdict& v, const std::string* error,
                        uint64_t generation);

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
    std::string text() const;
    // What keeping it costs, roughly: its text.
    size_t bytes() const;
  };
  void RememberPrepared(const std::string& name, Prepared prepared);
  void ForgetPrepared(const std::string& name);
  // For a prepared statement judged by an older policy: judges it again
  // with `gate`; returns the refusal if it is now refused (and remembers
  // it), nullptr otherwise.
  const std::string* Rejudge(const gate::Gate& gate, const std::string& name);
  // The protocol portal or SQL cursor `name` (`cursor`, if set: whether it
  // is a cursor); nullptr when neither is known.
  Prepared* FindPortal(const std::string& name, bool* cursor);
  // What `prepared` runs, judged by `gate`.
  gate::Verdict JudgeAgain(const gate::Gate& gate,
                           const Prepared& prepared) const;
  // The same for a cursor or portal `name` running `prepared`; the refusal
  // is not remembered (a cursor is declared again, not refused by name).
  const std::string* RejudgePortal(const gate::Gate& gate,
                                   const std::string& name,
                                   Prepared& prepared);

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
    // syncs_sent when it began: it belongs to the batch that the next
    // Sync (or the Query itself) ends, and is settled at that batch's
    // ReadyForQuery, not at an earlier one that arrives after it began.
    uint64_t batch = 0;
    bool confirmed = false;
    // Before-states, by name; nullopt: absent.
    std::vector<std::pair<std::string, std::optional<Prepared>>> statements;
    std::vector<std::pair<std::string, std::optional<std::string>>> refused;
    std::vector<std::pair<std::string, std::optional<Prepared>>> portals;
  };
  Tentative& BeginTentative(Confirmation by);
  // Keep `name`'s state as it is now in `t`, to restore it if undone.
  void NoteStatement(Tentative& t, const std::string& name);
  void NotePortal(Tentative& t, const std::string& name);
  void Confirm(Confirmation by);
  // Whether `name` was refused by a Parse whose outcome is still open.
  bool RefusalPending(const std::string& name) const;
  // Whether `name` was a prepared statement until a Close or DEALLOCATE
  // that PostgreSQL has not confirmed yet (it may skip it).
  bool RemovalPending(const std::string& name) const;
  // At ReadyForQuery: undo what the finished batches left unconfirmed,
  // newest first; later batches' entries stay (PostgreSQL has not answered
  // them yet).
  void SettleTentative();

  StageCallbacks* callbacks_;
  const bool keep_verdicts_;
  // Prepared statements (protocol level) that were refused at Parse, with
  // the ErrorResponse a later Bind or Describe of them gets.
  absl::flat_hash_map<std::string, std::string> refused_statements_;
  absl::flat_hash_map<std::string, Prepared> prepared_;
  size_t prepared_bytes_ = 0;
  // Portals bound from known statements: what each runs and the policy
  // generation that last allowed it, so an Execute after a policy change
  // is judged again. Emptied when a transaction ends (PostgreSQL drops
  // protocol portals then).
  absl::flat_hash_map<std::string, Prepared> portals_;
  // SQL cursors (DECLARE), by name: what each reads and the generation
  // that last allowed it.
  absl::flat_hash_map<std::string, Prepared> cursors_;
  // The last refusal RejudgePortal made.
  std::string portal_refusal_;
  std::deque<Tentative> tentative_;
  // Per Confirmation kind: where its next unconfirmed entry may be.
  size_t confirm_from_[5] = {0, 0, 0, 0, 0};
};

}  // namespace warden::dataplane::stages

#endif  // WARDEN_DATAPLANE_STAGES_POLICY_STAGE_H_
