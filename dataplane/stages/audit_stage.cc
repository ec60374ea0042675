#include "dataplane/stages/audit_stage.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "dataplane/net/event_loop.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/stages/policy_stage.h"
#include "policy/sql/normalize.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::stages {
namespace {

// What the templates of one session may hold.
constexpr size_t kMaxTemplateBytes = 16u << 20;

// What a client gets for a statement the audit trail could not record
// (`why`: the trail's refusal).
std::string UnrecordedError(const absl::Status& why) {
  std::string error;
  if (absl::IsUnavailable(why)) {  // the identity's audit budget
    pgwire::WriteErrorResponse(&error, "ERROR", pgwire::kInsufficientResources,
                               why.message(), "",
                               "Retry later, or with a smaller statement.", 0);
    return error;
  }
  pgwire::WriteErrorResponse(
      &error, "ERROR", pgwire::kInsufficientResources,
      "Warden: the audit trail cannot record this statement (the local "
      "spool is full or failing); it was not run",
      "", "Retry later; the proxy's operators are alerted by its log.", 0);
  return error;
}

// What a result event repeats of its intent: enough to read it alone
// (tags, tables, decision), not the text or parameters.
std::shared_ptr<const warden::v1::Statement> ResultSummary(
    const warden::v1::Statement& st) {
  auto summary = std::make_shared<warden::v1::Statement>();
  summary->set_phase(warden::v1::STATEMENT_PHASE_RESULT);
  summary->set_database(st.database());
  *summary->mutable_command_tags() = st.command_tags();
  *summary->mutable_tables() = st.tables();
  summary->set_fingerprint(st.fingerprint());
  summary->set_decision(st.decision());
  summary->set_policy(st.policy());
  summary->set_rule(st.rule());
  summary->set_bundle_revision(st.bundle_revision());
  summary->set_protocol(st.protocol());
  return summary;
}

// The same, taking the fields from an intent already recorded (`st` is
// left without them): no copy of its tags, tables and names.
std::shared_ptr<const warden::v1::Statement> TakeResultSummary(
    warden::v1::Statement* st) {
  auto summary = std::make_shared<warden::v1::Statement>();
  summary->set_phase(warden::v1::STATEMENT_PHASE_RESULT);
  summary->set_database(std::move(*st->mutable_database()));
  summary->mutable_command_tags()->Swap(st->mutable_command_tags());
  summary->mutable_tables()->Swap(st->mutable_tables());
  summary->set_fingerprint(std::move(*st->mutable_fingerprint()));
  summary->set_decision(st->decision());
  summary->set_policy(std::move(*st->mutable_policy()));
  summary->set_rule(std::move(*st->mutable_rule()));
  summary->set_bundle_revision(st->bundle_revision());
  summary->set_protocol(std::move(*st->mutable_protocol()));
  return summary;
}

}  // namespace

AuditStage::AuditStage(StageCallbacks* callbacks, AuditTrail* trail,
                       AuditStageOptions options)
    : callbacks_(callbacks),
      trail_(trail),
      options_(options),
      summaries_(options.results || options.sync != nullptr),
      loop_(&callbacks->loop()) {}

AuditStage::~AuditStage() {
  if (hold_timer_ != 0) loop_->CancelTimer(hold_timer_);
}

StageResult AuditStage::OnFrontend(const Frontend& m, bool resumed) {
  Execution& execution = callbacks_->execution();
  // What the messages relayed before this one completed (a portal bound
  // again, closed).
  if (options_.results) RecordResults(*callbacks_->completions());
  if (resumed) {
    held_ = false;
    // Recorded before the hold: relay it now, or, if the control plane
    // never confirmed its event, refuse it.
    if (hold_end_ != HoldEnd::kAcknowledged) {
      std::string error;
      const bool timed_out = hold_end_ == HoldEnd::kTimedOut;
      if (timed_out) {
        pgwire::WriteErrorResponse(
            &error, "ERROR", pgwire::kInsufficientResources,
            absl::StrCat("Warden: the control plane did not confirm this "
                         "statement's audit record within ",
                         options_.sync_timeout_ms,
                         " ms (audit mode sync); it was not run"),
            "", "Retry later; the proxy's operators are alerted by its log.",
            0);
      } else {
        pgwire::WriteErrorResponse(
            &error, "ERROR", pgwire::kQueryCanceled,
            "canceling statement due to user request",
            "Warden withdrew it while it waited for the control plane to "
            "confirm its audit record (audit mode sync); it was not run.",
            "", 0);
      }
      hold_end_ = HoldEnd::kAcknowledged;
      if (m.type == static_cast<char>(pgwire::FrontendType::kParse)) {
        const auto p = pgwire::ParseParse(m.body);
        EraseTemplate(StatementKey(p.ok() ? p->statement : ""));
      }
      callbacks_->Refuse(std::move(error));
      // Its intent is in the trail: the trail also says it did not run.
      RecordNotRun(timed_out ? pgwire::kInsufficientResources
                             : pgwire::kQueryCanceled,
                   timed_out
                       ? absl::StrCat("not run: the control plane did not "
                                      "confirm its audit record within ",
                                      options_.sync_timeout_ms, " ms")
                       : "not run: withdrawn by the client's cancel while it "
                         "waited for the control plane to confirm its audit "
                         "record");
    }
  } else if (m.shielded) {
    intent_ = Intent{};
  } else {
    intent_ = Intent{};
    const uint64_t sequence = RecordStatement(m);
    if (options_.sync != nullptr && !execution.refusal.has_value() &&
        sequence != 0 && options_.sync->acknowledged() < sequence) {
      // Sync mode: this message waits (kept in the client's buffer) until
      // its event is committed.
      Hold(sequence);
      return StageResult::kHold;
    }
  }
  const bool replaced = m.shielded || execution.refusal.has_value();
  if (options_.results) {
    // The session's correlator follows the message from its relay to its
    // answers; a substitute's answers are not this intent's.
    execution.intent = replaced ? Intent{} : std::move(intent_);
    intent_ = Intent{};
  }
  return replaced ? StageResult::kReplaced : StageResult::kContinue;
}

uint64_t AuditStage::Record(warden::v1::AuditEvent* event) {
  auto recorded = trail_->Record(event);
  if (!recorded.ok()) {
    last_error_ = recorded.status();
    if (absl::IsUnavailable(last_error_)) {
      spdlog::info("session {}: {}", callbacks_->facts().peer_address,
                   std::string(last_error_.message()));
    } else {
      spdlog::error("session {}: audit event not recorded: {}",
                    callbacks_->facts().peer_address,
                    recorded.status().ToString());
    }
    return 0;
  }
  return *recorded;
}

void AuditStage::Hold(uint64_t sequence) {
  waiting_ = true;
  held_ = true;
  std::weak_ptr<AuditStage*> weak = self_;
  hold_timer_ = loop_->AddTimer(
      std::chrono::milliseconds(options_.sync_timeout_ms), [weak] {
        if (auto self = weak.lock()) {
          (*self)->hold_timer_ = 0;
          (*self)->EndHold(HoldEnd::kTimedOut);
        }
      });
  net::EventLoop* loop = loop_;
  options_.sync->WhenAcknowledged(sequence, [weak, loop] {
    loop->Post([weak] {
      if (auto self = weak.lock()) (*self)->EndHold(HoldEnd::kAcknowledged);
    });
  });
  options_.sync->Nudge();
}

void AuditStage::OnCancel() { EndHold(HoldEnd::kCancelled); }

void AuditStage::EndHold(HoldEnd how) {
  if (!waiting_) return;
  waiting_ = false;
  if (hold_timer_ != 0) {
    loop_->CancelTimer(hold_timer_);
    hold_timer_ = 0;
  }
  hold_end_ = how;
  if (how == HoldEnd::kTimedOut) {
    spdlog::error("session {}: the control plane did not confirm an audit "
                  "event within {} ms; refusing the statement",
                  callbacks_->facts().peer_address, options_.sync_timeout_ms);
  }
  callbacks_->Resume();
}

void AuditStage::OnBackend(const Backend& m) {
  // The correlator paired the answer with its execution before the
  // stages see it: what it completed is recorded now.
  if (options_.results) RecordResults(*callbacks_->completions());
}

void AuditStage::OnEnd(absl::string_view why) {
  if (held_) {
    held_ = false;
    RecordNotRun("", absl::StrCat("not run: the session ended (", why,
                                  ") while it waited for the control plane "
                                  "to confirm its audit record"));
  }
  waiting_ = false;
  if (hold_timer_ != 0) {
    loop_->CancelTimer(hold_timer_);
    hold_timer_ = 0;
  }
  // (The session completed what was still running before this.)
  if (options_.results) RecordResults(*callbacks_->completions());
}


uint64_t AuditStage::RecordStatement(const Frontend& m) {
  const char type = m.type;
  const absl::string_view body = m.body;
  Execution& execution = callbacks_->execution();
  const bool refused = execution.refusal.has_value();
  const gate::Verdict* verdict =
      execution.verdict.has_value() ? &*execution.verdict : nullptr;
  std::string sql;
  std::string statement_name;
  const char* protocol = "simple";
  warden::v1::AuditEvent event =
      trail_->NewEvent(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  auto* st = event.mutable_statement();
  switch (static_cast<pgwire::FrontendType>(type)) {
    case pgwire::FrontendType::kQuery: {
      const auto q = pgwire::ParseQuery(body);
      if (!q.ok()) return 0;
      sql = std::string(q->sql);
      break;
    }
    case pgwire::FrontendType::kParse: {
      const auto p = pgwire::ParseParse(body);
      if (!p.ok()) return 0;
      sql = std::string(p->query);
      statement_name = std::string(p->statement);
      protocol = "extended-prepare";
      break;
    }
    case pgwire::FrontendType::kFunctionCall: {
      const auto f = pgwire::ParseFunctionCall(body);
      if (!f.ok()) return 0;
      sql = absl::StrCat("<function call, OID ", f->function_oid, ">");
      protocol = "function-call";
      break;
    }
    case pgwire::FrontendType::kBind: {
      // Every execution of a prepared statement is a statement of its own:
      // recorded with what its Parse recorded.
      if (refused) return 0;  // recorded at Parse.
      statement_name = std::string(BindStatement(body));
      std::shared_ptr<const warden::v1::Statement> summary;
      const auto it = templates_.find(StatementKey(statement_name));
      if (it != templates_.end()) {
        *st = it->second.statement;
        summary = it->second.summary;
      } else {
        st->set_reason(absl::StrCat("execution of prepared statement \"",
                                    statement_name,
                                    "\" whose text Warden did not keep"));
      }
      st->set_protocol("extended-execute");
      if (st->audit_level() == warden::v1::AUDIT_LEVEL_FULL) {
        // Full: the bound parameters too (text as sent; binary by size; a
        // value is capped so one statement cannot bloat the trail).
        constexpr size_t kMaxParamBytes = 1024;
        if (const auto bind = pgwire::ParseBind(body); bind.ok()) {
          for (size_t i = 0; i < bind->params.size(); ++i) {
            const auto& param = bind->params[i];
            const int16_t fmt =
                bind->param_formats.empty()      ? 0
                : bind->param_formats.size() == 1 ? bind->param_formats[0]
                                                  : bind->param_formats[i];
            if (param.is_null) {
              st->add_parameters("NULL");
            } else if (fmt != 0) {
              st->add_parameters(
                  absl::StrCat("<binary, ", param.value.size(), " bytes>"));
            } else if (param.value.size() > kMaxParamBytes) {
              st->add_parameters(absl::StrCat(
                  param.value.substr(0, kMaxParamBytes), "... <",
                  param.value.size(), " bytes>"));
            } else {
              st->add_parameters(std::string(param.value));
            }
          }
        }
      }
      ++statements_;
      if (const uint64_t sequence = Record(&event); sequence != 0) {
        if (summaries_) {
          if (summary == nullptr) summary = TakeResultSummary(st);
          intent_ = Intent{sequence, std::move(summary)};
        }
        return sequence;
      }
      callbacks_->Refuse(UnrecordedError(last_error_));
      return 0;
    }
    case pgwire::FrontendType::kClose: {
      const auto c = pgwire::ParseClose(body);
      if (c.ok() && c->kind == 'S') {
        EraseTemplate(StatementKey(c->name));
      }
      return 0;
    }
    case pgwire::FrontendType::kExecute:
      // Runs what its Bind recorded, unless a newer policy refused the
      // portal: that refusal is recorded here. A SQL cursor has no Bind:
      // each Execute of it is recorded here (red team pass 11, F3).
      if (refused && verdict != nullptr) {
        sql = std::move(execution.refused_portal_text);
        execution.refused_portal_text.clear();
      } else if (!refused && !execution.cursor_text.empty()) {
        sql = std::move(execution.cursor_text);
        execution.cursor_text.clear();
        st->set_reason(absl::StrCat(
            "execution of cursor \"", body.substr(0, body.find('\0')),
            "\" through the protocol"));
      } else {
        return 0;
      }
      protocol = "extended-execute";
      break;
    default:
      return 0;  // Describe / Sync: nothing new runs.
  }
  ++statements_;
  st->set_phase(warden::v1::STATEMENT_PHASE_INTENT);
  st->set_database(callbacks_->facts().database);
  st->set_protocol(protocol);
  warden::v1::AuditLevel level = warden::v1::AUDIT_LEVEL_FULL;
  if (verdict != nullptr) {
    level = verdict->decision.audit;
    st->set_decision(verdict->allowed ? warden::v1::POLICY_ACTION_ALLOW
                                      : verdict->decision.action);
    st->set_policy(verdict->decision.policy);
    st->set_rule(verdict->decision.rule);
    st->set_reason(verdict->decision.reason);
    st->set_bundle_revision(verdict->revision);
    st->set_bundle_digest(verdict->digest);
    if (!verdict->allowed) st->set_sqlstate(verdict->sqlstate);
    if (verdict->facts != nullptr) {
      for (const auto& f : *verdict->facts) {
        st->add_command_tags(f.command);
        if (st->fingerprint().empty()) st->set_fingerprint(f.fingerprint);
        for (const auto& r : f.relations) {
          st->add_tables(r.schema.empty() ? r.name
                                          : absl::StrCat(r.schema, ".", r.name));
        }
        for (const auto& c : f.columns) st->add_columns(c);
      }
    }
  } else {
    st->set_decision(warden::v1::POLICY_ACTION_ALLOW);
  }
  if (level == warden::v1::AUDIT_LEVEL_UNSPECIFIED) {
    level = warden::v1::AUDIT_LEVEL_FULL;
  }
  st->set_audit_level(level);
  if (level == warden::v1::AUDIT_LEVEL_FULL) {
    st->set_text(sql);
  } else if (level == warden::v1::AUDIT_LEVEL_NORMALIZED) {
    auto normalized = policy::sql::Normalize(sql);
    // Unparseable SQL has no constants to strip safely: keep none of it.
    if (normalized.ok()) st->set_normalized_text(*normalized);
  }
  if (type == static_cast<char>(pgwire::FrontendType::kParse)) {
    // What each later execution (Bind) of it records; bounded.
    const std::string key = StatementKey(statement_name);
    EraseTemplate(key);
    if (!refused &&
        template_bytes_ + st->ByteSizeLong() <= kMaxTemplateBytes) {
      template_bytes_ += st->ByteSizeLong();
      Template t{*st, nullptr};
      // The Parse itself executes nothing: the template's protocol is
      // that of its executions.
      t.statement.set_protocol("extended-execute");
      if (summaries_) t.summary = ResultSummary(t.statement);
      templates_.emplace(key, std::move(t));
    }
  }
  // (A Parse runs nothing; only in sync mode, where it may be held and
  // withdrawn, does it need what a "not run" event repeats.)
  const bool summarize =
      summaries_ && !refused &&
      (type != static_cast<char>(pgwire::FrontendType::kParse) ||
       options_.sync != nullptr);
  if (const uint64_t sequence = Record(&event); sequence != 0) {
    // Recorded: what the result event repeats moves out of it.
    if (summarize) intent_ = Intent{sequence, TakeResultSummary(st)};
    return sequence;
  }
  if (refused) return 0;
  // Not recorded, not refused yet: it must not run.
  const std::string error = UnrecordedError(last_error_);
  if (type == static_cast<char>(pgwire::FrontendType::kParse)) {
    EraseTemplate(StatementKey(statement_name));
  }
  callbacks_->Refuse(error);
  return 0;
}

void AuditStage::EraseTemplate(const std::string& key) {
  const auto it = templates_.find(key);
  if (it == templates_.end()) return;
  template_bytes_ -= it->second.statement.ByteSizeLong();
  templates_.erase(it);
}

void AuditStage::RecordNotRun(absl::string_view sqlstate, std::string note) {
  if (intent_.sequence == 0 || intent_.summary == nullptr) return;
  std::vector<Completion> not_run(1);
  Completion& c = not_run[0];
  c.intent = std::move(intent_);
  c.sqlstate = std::string(sqlstate);
  c.note = std::move(note);
  c.duration = absl::ZeroDuration();
  intent_ = Intent{};
  RecordResults(not_run);
}

void AuditStage::RecordResults(std::vector<Completion>& completions) {
  for (Completion& c : completions) {
    warden::v1::AuditEvent event =
        trail_->NewEvent(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
    warden::v1::Statement* st = event.mutable_statement();
    if (c.intent.summary.use_count() == 1) {
      // Its only holder (a simple query's own summary; a prepared
      // statement's is shared with its template): taken, not copied.
      *st = std::move(const_cast<warden::v1::Statement&>(*c.intent.summary));
    } else {
      *st = *c.intent.summary;
    }
    st->set_intent_sequence(c.intent.sequence);
    st->set_rows(c.rows);
    st->set_sqlstate(c.sqlstate);
    if (!c.note.empty()) st->set_reason(c.note);
    const absl::Duration took = std::max(c.duration, absl::ZeroDuration());
    SetDuration(took, st->mutable_duration());
    auto recorded = trail_->Record(&event);
    if (!recorded.ok()) {
      // The statement already ran (its intent is recorded); the next one
      // will be refused while the spool stays full.
      if (options_.results_lost != nullptr) {
        options_.results_lost->fetch_add(1, std::memory_order_relaxed);
      }
      spdlog::error("session {}: result of audit event {} not recorded: {}",
                    callbacks_->facts().peer_address, c.intent.sequence,
                    recorded.status().ToString());
    }
  }
  completions.clear();
}

}  // namespace warden::dataplane::stages
