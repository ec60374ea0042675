#include "dataplane/stages/policy_stage.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/sqlstate.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::stages {
namespace {

// Portals Warden keeps to judge their Executes again (a session with more
// open at once loses the oldest knowledge: PostgreSQL's transaction end
// drops them anyway).
constexpr size_t kMaxPortals = 4096;
// Parse / Close / PREPARE / DEALLOCATE awaiting PostgreSQL's confirmation.
constexpr size_t kMaxTentative = 100000;
constexpr size_t kMaxRefusedStatements = 10000;
// Text of allowed prepared statements kept per session to judge them again
// when the policy changes.
constexpr size_t kMaxPreparedBytes = 64u << 20;

}  // namespace

std::string PolicyStage::Prepared::text() const {
  if (facts == nullptr) return sql;
  std::string out;
  for (const auto& f : *facts) {
    if (!out.empty()) out += "; ";
    out += f.text;
  }
  return out;
}

size_t PolicyStage::Prepared::bytes() const {
  size_t n = sql.size();
  if (facts != nullptr) {
    for (const auto& f : *facts) n += f.text.size();
  }
  return n;
}

StageResult PolicyStage::OnFrontend(const Frontend& m, bool resumed) {
  if (m.shielded) {
    // The session answered it itself (a portal PostgreSQL may hold as
    // freed memory): only a Close's substitute has an answer to expect,
    // a CloseComplete that confirms this (empty) entry, not another
    // Close's.
    if (m.type == static_cast<char>(pgwire::FrontendType::kClose)) {
      BeginTentative(Confirmation::kClose);
    }
    return StageResult::kContinue;
  }
  const gate::Gate* gate = callbacks_->execution().gate;
  if (gate == nullptr) return StageResult::kContinue;
  Judge(*gate, m.type, m.body);
  return callbacks_->execution().refusal.has_value() ? StageResult::kReplaced
                                                     : StageResult::kContinue;
}

void PolicyStage::OnRefusedLater(const Frontend& m, const Refusal& refusal) {
  // A Parse allowed here and refused later (its audit record could not be
  // written): the name now stands for the refusal, as for a Parse refused
  // here.
  if (m.type != static_cast<char>(pgwire::FrontendType::kParse)) return;
  const auto p = pgwire::ParseParse(m.body);
  const std::string name = p.ok() ? std::string(p->statement) : "";
  ForgetPrepared(StatementKey(name));
  RememberRefused(name, refusal.error);
}

void PolicyStage::OnBackend(const Backend& m) {
  switch (static_cast<pgwire::BackendType>(m.type)) {
    case pgwire::BackendType::kParseComplete:
      if (!tentative_.empty()) Confirm(Confirmation::kParse);
      break;
    case pgwire::BackendType::kCloseComplete:
      if (!tentative_.empty()) Confirm(Confirmation::kClose);
      break;
    case pgwire::BackendType::kCommandComplete:
      if (!tentative_.empty()) {
        // Validated: the tag is terminated.
        const absl::string_view tag = m.body.substr(0, m.body.find('\0'));
        if (tag == "PREPARE") Confirm(Confirmation::kPrepareTag);
        if (absl::StartsWith(tag, "DEALLOCATE")) {
          Confirm(Confirmation::kDeallocateTag);
        }
      }
      break;
    case pgwire::BackendType::kErrorResponse:
      if (m.refused_parse && !tentative_.empty()) {
        Confirm(Confirmation::kRefusedParse);
      }
      break;
    case pgwire::BackendType::kReadyForQuery: {
      if (!tentative_.empty()) SettleTentative();
      // Idle: the transaction ended, and its portals with it (unless the
      // client already sent more: its Binds are a later batch's). The
      // pipeline already counts this batch as answered.
      const Pipeline& p = callbacks_->pipeline();
      if (m.body == "I" && !portals_.empty() && p.pending_syncs == 0 &&
          !p.unsynced) {
        portals_.clear();
      }
      break;
    }
    default:
      break;
  }
}

absl::string_view BindStatement(absl::string_view body) {
  const size_t portal_end = body.find('\0');
  const size_t start = portal_end + 1;
  return body.substr(start, body.find('\0', start) - start);
}

std::string StatementKey(absl::string_view name) {
  return std::string(pgwire::ObjectName(name));
}

void PolicyStage::RememberPrepared(const std::string& name, Prepared prepared) {
  // Assigned in place: the unnamed statement is replaced on every Parse.
  Prepared& slot = prepared_[name];
  prepared_bytes_ -= slot.bytes();
  prepared_bytes_ += prepared.bytes();
  slot = std::move(prepared);
  if (prepared_bytes_ > kMaxPreparedBytes) {
    callbacks_->Fail(pgwire::kProgramLimitExceeded,
         "prepared statements in this session exceed what Warden keeps to "
         "re-check them when the policy changes; deallocate some",
         warden::v1::SESSION_END_REASON_POLICY);
  }
}

void PolicyStage::ForgetPrepared(const std::string& name) {
  const auto it = prepared_.find(name);
  if (it == prepared_.end()) return;
  prepared_bytes_ -= it->second.bytes();
  prepared_.erase(it);
}

const std::string* PolicyStage::Rejudge(const gate::Gate& gate,
                                        const std::string& name) {
  const SessionFacts& facts = callbacks_->facts();
  const auto it = prepared_.find(name);
  if (it == prepared_.end() || it->second.generation == gate.generation()) {
    return nullptr;
  }
  const gate::Verdict v = JudgeAgain(gate, it->second);
  if (v.allowed) {
    it->second.generation = gate.generation();
    return nullptr;
  }
  spdlog::info("session {}: {} refused in {}/{}: prepared statement {} under "
               "the new policy: {}",
               facts.peer_address, facts.subject->user, facts.environment,
               facts.database, name, v.decision.reason);
  std::string error;
  pgwire::WriteErrorResponse(&error, "ERROR", v.sqlstate, v.message, v.detail,
                             v.hint, v.position);
  ForgetPrepared(name);
  RememberRefused(name, std::move(error));
  return &refused_statements_[name];
}

void PolicyStage::RememberRefused(std::string name, std::string error) {
  if (refused_statements_.size() >= kMaxRefusedStatements) {
    // Forgetting is safe: a forgotten name was never prepared upstream, so
    // using it still fails, with PostgreSQL's 26000 instead.
    refused_statements_.clear();
  }
  refused_statements_[StatementKey(name)] = std::move(error);
}

const std::string* PolicyStage::RefusedExecute(const gate::Gate& gate,
                                           const gate::Verdict& v) {
  if (v.facts == nullptr) return nullptr;
  for (const auto& f : *v.facts) {
    for (const auto& executed : f.executed) {
      const std::string name = StatementKey(executed);
      const auto it = refused_statements_.find(name);
      if (it != refused_statements_.end()) return &it->second;
      if (const std::string* now_refused = Rejudge(gate, name)) {
        return now_refused;
      }
    }
    // FETCH / MOVE of a cursor declared, or a portal bound, under an older
    // policy (red team pass 11, F1): it reads what was declared then.
    if (f.node == "FetchStmt" && !f.cursor.empty()) {
      const std::string name = StatementKey(f.cursor);
      if (Prepared* target = FindPortal(name, nullptr)) {
        if (const std::string* refused = RejudgePortal(gate, name, *target)) {
          return refused;
        }
      }
    }
  }
  return nullptr;
}

PolicyStage::Prepared* PolicyStage::FindPortal(const std::string& name,
                                               bool* cursor) {
  // One namespace in PostgreSQL, one entry here (a Bind drops the
  // cursor entry of its name, a DECLARE the portal entry).
  if (const auto p = portals_.find(name); p != portals_.end()) {
    return &p->second;
  }
  const auto c = cursors_.find(name);
  if (c == cursors_.end()) return nullptr;
  if (cursor != nullptr) *cursor = true;
  return &c->second;
}

gate::Verdict PolicyStage::JudgeAgain(const gate::Gate& gate,
                                      const Prepared& prepared) const {
  const SessionFacts& facts = callbacks_->facts();
  return prepared.facts != nullptr
             ? gate.JudgeFacts(prepared.facts, *facts.subject,
                               facts.environment, facts.database)
             : gate.Judge(prepared.sql, *facts.subject, facts.environment,
                          facts.database);
}

const std::string* PolicyStage::RejudgePortal(const gate::Gate& gate,
                                              const std::string& name,
                                              Prepared& prepared) {
  if (prepared.generation == gate.generation()) return nullptr;
  const gate::Verdict v = JudgeAgain(gate, prepared);
  if (v.allowed) {
    prepared.generation = gate.generation();
    return nullptr;
  }
  Keep(v);
  const SessionFacts& facts = callbacks_->facts();
  spdlog::info("session {}: {} refused in {}/{}: portal or cursor \"{}\" "
               "opened under an earlier policy: {}",
               facts.peer_address, facts.subject->user, facts.environment,
               facts.database, name, v.decision.reason);
  portal_refusal_.clear();
  pgwire::WriteErrorResponse(&portal_refusal_, "ERROR", v.sqlstate, v.message,
                             v.detail, v.hint, v.position);
  return &portal_refusal_;
}

void PolicyStage::TrackSqlPrepares(const gate::Verdict& v,
                               const std::string* error, uint64_t generation) {
  if (v.facts == nullptr) return;
  for (const auto& f : *v.facts) {
    if (f.node == "DeclareCursorStmt" && error == nullptr) {
      // What the cursor reads, to judge its FETCHes (and protocol
      // Executes) again after a policy change. Kept until declared again:
      // a WITH HOLD cursor outlives its transaction, and a stale entry
      // only judges a FETCH that PostgreSQL refuses anyway.
      const std::string cursor = StatementKey(f.cursor);
      if (cursors_.size() >= kMaxPortals && cursors_.count(cursor) == 0) {
        callbacks_->Fail(pgwire::kProgramLimitExceeded,
                         "more cursors in this session than Warden keeps to "
                         "re-check them when the policy changes",
                         warden::v1::SESSION_END_REASON_POLICY);
        return;
      }
      cursors_[cursor] = Prepared{nullptr, f.text, generation};
      portals_.erase(cursor);
    }
    const std::string name = StatementKey(f.prepared_name);
    if (f.node == "PrepareStmt") {
      if (error != nullptr) {
        RememberRefused(name, *error);
      } else {
        NoteStatement(BeginTentative(Confirmation::kPrepareTag), name);
        refused_statements_.erase(name);
        RememberPrepared(name, Prepared{nullptr, f.text, generation});
      }
    } else if (f.node == "DeallocateStmt" && error == nullptr) {
      Tentative& t = BeginTentative(Confirmation::kDeallocateTag);
      if (f.prepared_name.empty()) {
        std::vector<std::string> names;
        for (const auto& [n, p] : prepared_) names.push_back(n);
        for (const auto& [n, e] : refused_statements_) names.push_back(n);
        for (const std::string& n : names) NoteStatement(t, n);
        refused_statements_.clear();
        prepared_.clear();
        prepared_bytes_ = 0;
      } else {
        NoteStatement(t, name);
        refused_statements_.erase(name);
        ForgetPrepared(name);
      }
    }
  }
}

PolicyStage::Tentative& PolicyStage::BeginTentative(Confirmation by) {
  if (tentative_.size() >= kMaxTentative) {
    // Only a client that pipelines this many Parses and Closes without a
    // Sync gets here; what they changed cannot be kept to check.
    callbacks_->Fail(pgwire::kProgramLimitExceeded,
         absl::StrCat("more than ", kMaxTentative,
                      " Parse/Close messages without a Sync; send Sync "
                      "more often"),
         warden::v1::SESSION_END_REASON_POLICY);
    tentative_.clear();
    for (size_t& from : confirm_from_) from = 0;
  }
  tentative_.push_back(Tentative{by, callbacks_->pipeline().syncs_sent});
  return tentative_.back();
}

void PolicyStage::NoteStatement(Tentative& t, const std::string& name) {
  for (const auto& [n, before] : t.statements) {
    if (n == name) return;  // the first state is the one to restore
  }
  const auto p = prepared_.find(name);
  t.statements.emplace_back(name, p == prepared_.end()
                                      ? std::nullopt
                                      : std::optional<Prepared>(p->second));
  const auto r = refused_statements_.find(name);
  t.refused.emplace_back(name, r == refused_statements_.end()
                                   ? std::nullopt
                                   : std::optional<std::string>(r->second));
}

void PolicyStage::NotePortal(Tentative& t, const std::string& name) {
  const auto p = portals_.find(name);
  t.portals.emplace_back(name, p == portals_.end()
                                   ? std::nullopt
                                   : std::optional<Prepared>(p->second));
}




bool PolicyStage::RemovalPending(const std::string& name) const {
  for (const Tentative& t : tentative_) {
    if (t.confirmed || (t.by != Confirmation::kClose &&
                        t.by != Confirmation::kDeallocateTag)) {
      continue;
    }
    for (const auto& [n, before] : t.statements) {
      if (n == name && before.has_value()) return true;
    }
  }
  return false;
}

bool PolicyStage::RefusalPending(const std::string& name) const {
  // Refused by a Parse PostgreSQL has not answered yet: if it skips that
  // Parse (an earlier error in its batch), the name keeps what it named
  // before, so only PostgreSQL can answer for it (it never has the refused
  // statement either way).
  for (const Tentative& t : tentative_) {
    if (t.by != Confirmation::kRefusedParse || t.confirmed) continue;
    for (const auto& [n, before] : t.statements) {
      if (n == name) return true;
    }
  }
  return false;
}

void PolicyStage::Confirm(Confirmation by) {
  // PostgreSQL answers in order, so each kind's confirmations go to its
  // entries in order: a cursor per kind keeps a long pipeline linear.
  size_t& from = confirm_from_[static_cast<int>(by)];
  for (; from < tentative_.size(); ++from) {
    if (tentative_[from].by == by) {
      tentative_[from++].confirmed = true;
      return;
    }
  }
}

void PolicyStage::SettleTentative() {
  // The batches whose ReadyForQuery came: their entries are first.
  size_t settled = 0;
  while (settled < tentative_.size() &&
         tentative_[settled].batch < callbacks_->pipeline().syncs_done) {
    ++settled;
  }
  // Undoes `name`'s change by an unconfirmed entry: a later, still open
  // entry that changed the name again was noted against this one's
  // outcome, so it takes this one's before-state instead; otherwise the
  // state goes back to it.
  const auto undo = [&](auto Tentative::*list, const std::string& name,
                        auto before, auto restore) {
    for (size_t k = settled; k < tentative_.size(); ++k) {
      for (auto& [n, later_before] : tentative_[k].*list) {
        if (n == name) {
          later_before = std::move(before);
          return;
        }
      }
    }
    restore(name, std::move(before));
  };
  for (size_t i = settled; i-- > 0;) {
    Tentative& t = tentative_[i];
    if (t.confirmed) continue;
    for (auto& [name, before] : t.statements) {
      undo(&Tentative::statements, name, std::move(before),
           [this](const std::string& n, std::optional<Prepared> b) {
             if (b.has_value()) {
               RememberPrepared(n, *std::move(b));
             } else {
               ForgetPrepared(n);
             }
           });
    }
    for (auto& [name, before] : t.refused) {
      undo(&Tentative::refused, name, std::move(before),
           [this](const std::string& n, std::optional<std::string> b) {
             if (b.has_value()) {
               refused_statements_[n] = *std::move(b);
             } else {
               refused_statements_.erase(n);
             }
           });
    }
    for (auto& [name, before] : t.portals) {
      undo(&Tentative::portals, name, std::move(before),
           [this](const std::string& n, std::optional<Prepared> b) {
             if (b.has_value()) {
               portals_[n] = *std::move(b);
             } else {
               portals_.erase(n);
             }
           });
    }
  }
  tentative_.erase(tentative_.begin(), tentative_.begin() + settled);
  for (size_t& from : confirm_from_) from = from > settled ? from - settled : 0;
}
gate::Verdict PolicyStage::SettledLexing(const gate::Gate& gate, gate::Verdict v,
                                     absl::string_view sql) const {
  // PostgreSQL reports a changed standard_conforming_strings or
  // client_encoding (ParameterStatus) only before its next ReadyForQuery,
  // but reads every message with the settings of the moment it arrives. A
  // statement pipelined behind an unfinished one (which may call a
  // function that changes them) is read by rules Warden cannot know yet.
  // Only a backslash or a non-ASCII byte reads differently under another
  // such setting (no client encoding has a quote, '$' or comment byte
  // inside a character; a non-ASCII name can become another name), so
  // only those statements are refused; the rest pipeline freely.
  if (v.decision.action == warden::v1::POLICY_ACTION_DENY) return v;
  if (callbacks_->pipeline().pending_syncs == 0 &&
      !callbacks_->pipeline().executed_unsynced) return v;
  const bool sensitive = std::any_of(sql.begin(), sql.end(), [](char c) {
    return c == '\\' || static_cast<unsigned char>(c) >= 0x80;
  });
  if (!sensitive) return v;
  return gate.DenyBuiltIn(
      v, "no-pipelined-lexing",
      "the statement contains a backslash or a non-ASCII byte and was sent "
      "before PostgreSQL "
      "finished an earlier statement of this session, which may have "
      "changed how it is read (standard_conforming_strings, client_encoding). "
      "Send it once the earlier statements have completed (after their "
      "Sync), or pass such text as a parameter");
}
void PolicyStage::Judge(const gate::Gate& gate, char type,
                        absl::string_view body) {
  const SessionFacts& facts = callbacks_->facts();
  const auto encode = [](const gate::Verdict& v) {
    std::string error;
    pgwire::WriteErrorResponse(&error, "ERROR", v.sqlstate, v.message,
                               v.detail, v.hint, v.position);
    return error;
  };
  const auto log = [&](const gate::Verdict& v, absl::string_view sql) {
    spdlog::info("session {}: {} refused in {}/{}: {} [{}]", facts.peer_address,
                 facts.subject->user, facts.environment, facts.database,
                 v.decision.reason,
                 sql.size() > 200 ? absl::StrCat(sql.substr(0, 200), "...")
                                  : std::string(sql));
  };
  switch (static_cast<pgwire::FrontendType>(type)) {
    case pgwire::FrontendType::kQuery: {
      const auto q = pgwire::ParseQuery(body);
      if (!q.ok()) return;  // validated already.
      const gate::Verdict v = SettledLexing(
          gate, gate.Judge(q->sql, *facts.subject, facts.environment,
                           facts.database),
          q->sql);
      Keep(v);
      std::string error;
      if (!v.allowed) {
        log(v, q->sql);
        error = encode(v);
      } else if (const std::string* inherited = RefusedExecute(gate, v)) {
        spdlog::info("session {}: {} refused in {}/{}: EXECUTE of a refused "
                     "prepared statement",
                     facts.peer_address, facts.subject->user,
                     facts.environment, facts.database);
        error = *inherited;
      } else {
        TrackSqlPrepares(v, nullptr, gate.generation());
        return;
      }
      TrackSqlPrepares(v, &error, gate.generation());
      callbacks_->Refuse(std::move(error));
      return;
    }
    case pgwire::FrontendType::kParse: {
      const auto p = pgwire::ParseParse(body);
      if (!p.ok()) return;
      const gate::Verdict v = SettledLexing(
          gate, gate.Judge(p->query, *facts.subject, facts.environment,
                           facts.database),
          p->query);
      Keep(v);
      std::string error;
      if (!v.allowed) {
        log(v, p->query);
        error = encode(v);
      } else if (const std::string* inherited = RefusedExecute(gate, v)) {
        error = *inherited;
      } else {
        const std::string name = StatementKey(p->statement);
        NoteStatement(BeginTentative(Confirmation::kParse), name);
        refused_statements_.erase(name);
        RememberPrepared(name, Prepared{v.facts, "", gate.generation()});
        TrackSqlPrepares(v, nullptr, gate.generation());
        return;
      }
      TrackSqlPrepares(v, &error, gate.generation());
      const std::string name = StatementKey(p->statement);
      bool tentative = false;
      // A name whose Close (or DEALLOCATE) PostgreSQL has not confirmed
      // may still be there: if PostgreSQL skipped that Close, it keeps the
      // old statement, and so does Warden (below).
      if (p->statement.empty() ||
          (prepared_.count(name) == 0 && !RemovalPending(name))) {
        // Undone at its batch's end unless PostgreSQL read the poison (it
        // skips it after an earlier error, and the old unnamed statement
        // then stays).
        NoteStatement(BeginTentative(Confirmation::kRefusedParse), name);
        tentative = true;
        ForgetPrepared(name);
        RememberRefused(std::string(p->statement), error);
      }
      // (A named statement PostgreSQL already has stays as it was: it
      // refuses a Parse of an existing name, 42P05, and keeps the old one,
      // so later Binds of the name run the old, judged statement.)
      callbacks_->Refuse(std::move(error), tentative);
      return;
    }
    case pgwire::FrontendType::kBind: {
      const std::string name = StatementKey(BindStatement(body));
      const auto it = refused_statements_.find(name);
      const std::string* error = it != refused_statements_.end()
                                     ? (RefusalPending(name) ? nullptr
                                                             : &it->second)
                                     : Rejudge(gate, name);
      const absl::string_view portal = body.substr(0, body.find('\0'));
      if (error == nullptr) {
        // What the portal runs, for its Executes (a refused Bind leaves
        // PostgreSQL's portal of that name as it was).
        const auto known = prepared_.find(name);
        if (known != prepared_.end()) {
          if (portals_.size() >= kMaxPortals) portals_.clear();
          portals_[StatementKey(portal)] = known->second;
          cursors_.erase(StatementKey(portal));
        } else {
          portals_.erase(StatementKey(portal));
        }
        return;
      }
      callbacks_->Refuse(*error);
      return;
    }
    case pgwire::FrontendType::kExecute: {
      // A portal bound under an older policy is judged again: it runs
      // what it was bound to, whatever policy was pushed since.
      // A SQL cursor (DECLARE) has no Bind: the audit trail records its
      // execution here (red team pass 11).
      const std::string portal = StatementKey(body.substr(0, body.find('\0')));
      bool cursor = false;
      Prepared* target = FindPortal(portal, &cursor);
      if (target == nullptr) return;
      if (const std::string* refused = RejudgePortal(gate, portal, *target)) {
        callbacks_->execution().refused_portal_text = target->text();
        callbacks_->Refuse(*refused);
        return;
      }
      if (cursor) callbacks_->execution().cursor_text = target->text();
      return;
    }
    case pgwire::FrontendType::kDescribe: {
      const auto d = pgwire::ParseDescribe(body);
      if (!d.ok() || d->kind != 'S') return;
      const std::string name = StatementKey(d->name);
      const auto it = refused_statements_.find(name);
      const std::string* error = it != refused_statements_.end()
                                     ? (RefusalPending(name) ? nullptr
                                                             : &it->second)
                                     : Rejudge(gate, name);
      if (error == nullptr) return;
      callbacks_->Refuse(*error);
      return;
    }
    case pgwire::FrontendType::kClose: {
      // Forgotten now, restored at ReadyForQuery unless PostgreSQL
      // confirmed it (a Close it skipped leaves the statement in place).
      const auto c = pgwire::ParseClose(body);
      if (!c.ok()) return;
      Tentative& t = BeginTentative(Confirmation::kClose);
      if (c->kind == 'S') {
        const std::string name = StatementKey(c->name);
        NoteStatement(t, name);
        refused_statements_.erase(name);
        ForgetPrepared(name);
      } else {
        const std::string name = StatementKey(c->name);
        NotePortal(t, name);
        portals_.erase(name);
      }
      return;
    }
    case pgwire::FrontendType::kFunctionCall: {
      const auto f = pgwire::ParseFunctionCall(body);
      if (!f.ok()) return;
      const gate::Verdict v = gate.JudgeFunctionCall(
          f->function_oid, *facts.subject, facts.environment, facts.database);
      Keep(v);
      if (v.allowed) return;
      log(v, absl::StrCat("<function call, OID ", f->function_oid, ">"));
      callbacks_->Refuse(encode(v));
      return;
    }
    default:
      return;
  }
}

}  // namespace warden::dataplane::stages
