#include "dataplane/stages/result_tracker.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/sqlstate.h"

namespace warden::dataplane::stages {

int64_t ResultTracker::RowsOfTag(absl::string_view tag) {
  const size_t space = tag.rfind(' ');
  if (space == absl::string_view::npos) return -1;
  const absl::string_view last = tag.substr(space + 1);
  if (last.empty()) return -1;
  for (const char c : last) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return -1;
  }
  int64_t rows = 0;
  if (!absl::SimpleAtoi(last, &rows)) return -1;
  return rows;
}

void ResultTracker::OnFrontend(char type, absl::string_view body,
                               Intent intent, absl::Time now,
                               std::vector<Completion>* out) {
  switch (static_cast<pgwire::FrontendType>(type)) {
    case pgwire::FrontendType::kQuery:
      return Query(std::move(intent), now);
    case pgwire::FrontendType::kFunctionCall:
      return FunctionCall(std::move(intent), now);
    case pgwire::FrontendType::kParse:
      // Validated: the statement name is terminated.
      return Parse(body.substr(0, body.find('\0')));
    case pgwire::FrontendType::kBind:
      if (auto bind = pgwire::ParseBindTarget(body); bind.ok()) {
        return Bind(bind->portal, std::move(intent), now, out, bind->statement,
                    std::move(bind->result_formats));
      }
      // (validated: not reached)
      return Bind(body.substr(0, body.find('\0')), std::move(intent), now,
                  out);
    case pgwire::FrontendType::kDescribe:
      if (const auto d = pgwire::ParseDescribe(body); d.ok()) {
        return Describe(d->kind, d->name);
      }
      return Describe();  // (validated: not reached)
    case pgwire::FrontendType::kExecute:
      // A cursor's execution recorded its own intent: it is followed as a
      // portal bound for it.
      if (intent.sequence != 0) {
        Cursor(body.substr(0, body.find('\0')), std::move(intent), now, out);
      }
      return Execute(body.substr(0, body.find('\0')));
    case pgwire::FrontendType::kClose:
      if (const auto c = pgwire::ParseClose(body); c.ok()) {
        return Close(c->kind, c->name, out);
      }
      return Close('S', "", out);  // (validated: not reached)
    case pgwire::FrontendType::kSync:
      return Sync();
    default:
      return;
  }
}

void ResultTracker::OnBackend(char type, absl::string_view body,
                              absl::Time now, std::vector<Completion>* out) {
  answering_ = nullptr;
  Recycle(std::move(answering_keep_));
  switch (static_cast<pgwire::BackendType>(type)) {
    case pgwire::BackendType::kReadyForQuery:
      return ReadyForQuery(now, out);
    case pgwire::BackendType::kErrorResponse: {
      const auto error = pgwire::ParseErrorResponse(body);
      return Error(error.ok() ? error->Get('C') : pgwire::kInternalError, now,
                   out);
    }
    case pgwire::BackendType::kDataRow:
      return DataRow();
    case pgwire::BackendType::kCommandComplete:
      // Validated: the tag is terminated.
      return CommandComplete(body.substr(0, body.find('\0')), now, out);
    case pgwire::BackendType::kPortalSuspended:
      return PortalSuspended(now, out);
    case pgwire::BackendType::kEmptyQueryResponse:
      return EmptyQuery(now, out);
    case pgwire::BackendType::kParseComplete:
      return ParseComplete();
    case pgwire::BackendType::kBindComplete:
      return BindComplete();
    case pgwire::BackendType::kCloseComplete:
      return CloseComplete();
    case pgwire::BackendType::kRowDescription:
    case pgwire::BackendType::kNoData:
      return Described(type, body);
    case pgwire::BackendType::kCopyInResponse:
    case pgwire::BackendType::kCopyOutResponse:
    case pgwire::BackendType::kCopyBothResponse:
    case pgwire::BackendType::kCopyData:
    case pgwire::BackendType::kCopyDone:
    case pgwire::BackendType::kNoticeResponse:
    case pgwire::BackendType::kFunctionCallResponse:
      // Part of the answer of the execution at the head.
      if (Entry* head = PeekResult()) answering_ = head->exec.get();
      return;
    default:
      return;
  }
}

const ExecutionRecord* ResultTracker::Portal(absl::string_view name) const {
  const auto it = portals_.find(name);
  return it == portals_.end() ? nullptr : it->second.get();
}

void ResultTracker::Query(Intent intent, absl::Time now) {
  std::shared_ptr<Exec> exec = NewExec();
  exec->intent = std::move(intent);
  exec->started = exec->last = now;
  queue_.push_back(Entry{Kind::kQuery, ++sent_, std::move(exec)});
}

void ResultTracker::FunctionCall(Intent intent, absl::Time now) {
  Query(std::move(intent), now);
  queue_.back().kind = Kind::kFunctionCall;
}

void ResultTracker::Parse(absl::string_view statement) {
  // The name's description is the old statement's until PostgreSQL takes
  // the new one (or skips it): unknown from now on either way.
  ++name_changes_;
  if (!statements_.empty()) {
    if (const auto it = statements_.find(pgwire::ObjectName(statement));
        it != statements_.end()) {
      statements_.erase(it);
    }
  }
  queue_.push_back(Entry{Kind::kParse, sent_ + 1, nullptr});
}

void ResultTracker::Describe(char kind, absl::string_view name) {
  Entry entry{Kind::kDescribe, sent_ + 1, nullptr};
  entry.described_kind = kind;
  entry.described = std::make_unique<const Entry::Described>(Entry::Described{
      std::string(pgwire::ObjectName(name)), name_changes_});
  queue_.push_back(std::move(entry));
}

void ResultTracker::Bind(absl::string_view portal, Intent intent,
                         absl::Time now, std::vector<Completion>* out,
                         absl::string_view statement,
                         std::vector<int16_t> result_formats) {
  const std::shared_ptr<Exec>* followed =
      Follow(pgwire::ObjectName(portal), std::move(intent), now, out);
  if (followed != nullptr) {
    Exec* exec = followed->get();
    const absl::string_view bound_from = pgwire::ObjectName(statement);
    exec->statement.assign(bound_from.data(), bound_from.size());
    exec->bound_at = name_changes_;
    // All text is said with no codes.
    bool text = true;
    for (const int16_t f : result_formats) text = text && f == 0;
    if (!text) exec->result_formats = std::move(result_formats);
    if (!statements_.empty()) {
      if (const auto it = statements_.find(exec->statement);
          it != statements_.end()) {
        exec->row_description = it->second;
        exec->described = ExecutionRecord::Described::kStatement;
      }
    }
  }
  // The Bind's own answer (BindComplete or the error that fails it).
  queue_.push_back(Entry{Kind::kBind, sent_ + 1,
                         followed != nullptr ? *followed : nullptr});
}

void ResultTracker::Cursor(absl::string_view portal, Intent intent,
                           absl::Time now, std::vector<Completion>* out) {
  Follow(pgwire::ObjectName(portal), std::move(intent), now, out);
}

const std::shared_ptr<ResultTracker::Exec>* ResultTracker::Follow(
    absl::string_view name, Intent intent, absl::Time now,
    std::vector<Completion>* out) {
  std::shared_ptr<Exec>* slot = nullptr;
  if (const auto it = portals_.find(name); it != portals_.end()) {
    if (it->second.use_count() == 1 && it->second->done) {
      // Its last execution is over and nothing else refers to it (the
      // unnamed portal bound again, the common case): reused in place.
      slot = &it->second;
      (*slot)->Reset();
    } else {
      DropPortal(std::string(name), out);
    }
  }
  if (slot == nullptr) {
    if (!name.empty() && portals_.size() >= kMaxPortals) return nullptr;
    slot = &portals_[name];
    *slot = NewExec();
  }
  Exec* exec = slot->get();
  exec->intent = std::move(intent);
  exec->portal.assign(name.data(), name.size());
  exec->started = exec->last = now;
  return slot;
}

void ResultTracker::Execute(absl::string_view portal) {
  std::shared_ptr<Exec> exec;
  if (const auto it = portals_.find(pgwire::ObjectName(portal));
      it != portals_.end()) {
    exec = it->second;
    ++exec->pending;
  }
  queue_.push_back(Entry{Kind::kExecute, sent_ + 1, std::move(exec)});
}

void ResultTracker::Close(char kind, absl::string_view name,
                          std::vector<Completion>* out) {
  if (kind == 'P') DropPortal(std::string(pgwire::ObjectName(name)), out);
  if (kind == 'S') {
    ++name_changes_;
    statements_.erase(pgwire::ObjectName(name));
  }
  queue_.push_back(Entry{Kind::kClose, sent_ + 1, nullptr});
}

void ResultTracker::Sync() { ++sent_; }

void ResultTracker::DropPortal(const std::string& name,
                               std::vector<Completion>* out) {
  const auto it = portals_.find(name);
  if (it == portals_.end()) return;
  std::shared_ptr<Exec> exec = std::move(it->second);
  portals_.erase(it);
  exec->open = false;
  if (exec->pending > 0 || exec->done) {
    // Its answers complete it.
  } else if (exec->suspended) {
    Complete(exec.get(), exec->last, pgwire::kSuccessfulCompletion,
             "portal closed before all its rows were fetched", out);
  } else {
    Complete(exec.get(), exec->last, "",
             "not executed: the portal was bound but never executed", out);
  }
  Recycle(std::move(exec));
}

std::shared_ptr<ResultTracker::Exec> ResultTracker::NewExec() {
  if (spare_ == nullptr) return std::make_shared<Exec>();
  std::shared_ptr<Exec> exec = std::move(spare_);
  exec->Reset();
  return exec;
}

void ResultTracker::Exec::Reset() {
  intent = Intent();
  portal.clear();
  statement.clear();
  row_description.reset();
  described = Described::kNo;
  result_formats.clear();
  started = last = absl::Time();
  rows = 0;
  sqlstate.clear();
  pending = 0;
  suspended = false;
  open = true;
  done = false;
  bound_at = 0;
}

void ResultTracker::Recycle(std::shared_ptr<Exec> exec) {
  if (exec != nullptr && exec.use_count() == 1) spare_ = std::move(exec);
}

void ResultTracker::PopFront() {
  Recycle(std::move(queue_.front().exec));
  queue_.pop_front();
}

std::shared_ptr<const std::string> ResultTracker::Description(
    absl::string_view body) {
  // Most clients run the same statements again: their columns are shared.
  if (last_description_ == nullptr || *last_description_ != body) {
    last_description_ = std::make_shared<const std::string>(body);
  }
  return last_description_;
}

ResultTracker::Entry* ResultTracker::Head() {
  if (queue_.empty() || queue_.front().batch != done_ + 1) return nullptr;
  return &queue_.front();
}

ResultTracker::Entry* ResultTracker::ResultHead() {
  Entry* head = Head();
  while (head != nullptr && AnsweredByOneMessage(head->kind)) {
    PopFront();
    head = Head();
  }
  return head;
}

ResultTracker::Entry* ResultTracker::PeekResult() {
  for (Entry& entry : queue_) {
    if (entry.batch != done_ + 1) return nullptr;
    if (!AnsweredByOneMessage(entry.kind)) return &entry;
  }
  return nullptr;
}

void ResultTracker::Described(char type, absl::string_view body) {
  Entry* head = Head();
  if (head == nullptr) return;
  const bool rows = type == static_cast<char>(pgwire::BackendType::kRowDescription);
  if (head->kind == Kind::kDescribe) {
    std::shared_ptr<const std::string> description =
        Description(rows ? body : absl::string_view());
    const Entry::Described& target = *head->described;
    if (head->described_kind == 'P') {
      if (const auto it = portals_.find(target.name);
          it != portals_.end()) {
        it->second->row_description = std::move(description);
        it->second->described = ExecutionRecord::Described::kPortal;
      }
    } else if (target.names_at == name_changes_ &&
               (statements_.size() < kMaxStatements ||
                statements_.contains(target.name))) {
      // Portals bound from it since the Describe (a pipelined Parse,
      // Describe, Bind, Execute) are described by it too.
      for (auto& [name, exec] : portals_) {
        if (exec->described == ExecutionRecord::Described::kNo &&
            exec->statement == target.name && !exec->done &&
            exec->bound_at == target.names_at) {
          exec->row_description = description;
          exec->described = ExecutionRecord::Described::kStatement;
        }
      }
      statements_[target.name] = std::move(description);
    }
    queue_.pop_front();
    return;
  }
  // A Query's statement's columns, before its rows.
  if (rows && head->kind == Kind::kQuery && head->exec != nullptr) {
    head->exec->row_description = Description(body);
    head->exec->described = ExecutionRecord::Described::kQuery;
    answering_ = head->exec.get();
  }
}

void ResultTracker::Answered(Kind kind) {
  Entry* head = Head();
  if (head != nullptr && head->kind == kind) PopFront();
}

void ResultTracker::PopExecute() {
  Exec* exec = queue_.front().exec.get();
  if (exec != nullptr) --exec->pending;
  PopFront();
}

void ResultTracker::Complete(Exec* exec, absl::Time now, std::string sqlstate,
                             std::string note, std::vector<Completion>* out) {
  if (exec == nullptr || exec->done) return;
  exec->done = true;
  if (exec->intent.sequence == 0) return;
  Completion c;
  // Done: nothing reads the execution's intent again, so the completion
  // takes it (the audit stage then moves a summary it alone holds into
  // the result event instead of copying it).
  c.intent = std::move(exec->intent);
  c.rows = exec->rows;
  c.duration = now - exec->started;
  c.sqlstate = std::move(sqlstate);
  c.note = std::move(note);
  out->push_back(std::move(c));
}

void ResultTracker::DataRow() {
  if (Entry* head = ResultHead()) {
    ++head->data_rows;
    answering_ = head->exec.get();
  }
}

void ResultTracker::Answering(std::shared_ptr<Exec> exec) {
  answering_ = exec.get();
  answering_keep_ = std::move(exec);
}

void ResultTracker::CommandComplete(absl::string_view tag, absl::Time now,
                                    std::vector<Completion>* out) {
  // SQL PREPARE and DEALLOCATE change the names the descriptions are
  // kept by (they share the protocol's namespace).
  if (absl::StartsWith(tag, "PREPARE") || absl::StartsWith(tag, "DEALLOCATE")) {
    ++name_changes_;
    statements_.clear();
  }
  Entry* head = ResultHead();
  if (head == nullptr || head->kind == Kind::kFunctionCall) return;
  Answering(head->exec);
  const int64_t counted = RowsOfTag(tag);
  // Commands without a count in their tag (SHOW, say) still returned rows.
  const int64_t rows = counted >= 0 ? counted : head->data_rows;
  head->data_rows = 0;
  // Owned here: the queue entry may hold the last reference (its portal
  // was re-bound or closed since), and PopExecute drops it.
  std::shared_ptr<Exec> exec = head->exec;
  if (exec != nullptr) {
    exec->rows += rows;
    exec->last = now;
  }
  if (head->kind == Kind::kExecute) {
    PopExecute();
    Complete(exec.get(), now, pgwire::kSuccessfulCompletion, "", out);
  }
}

void ResultTracker::PortalSuspended(absl::Time now,
                                    std::vector<Completion>* out) {
  Entry* head = ResultHead();
  if (head == nullptr || head->kind != Kind::kExecute) return;
  std::shared_ptr<Exec> exec = head->exec;
  Answering(exec);
  if (exec != nullptr) {
    exec->rows += head->data_rows;
    exec->suspended = true;
    exec->last = now;
  }
  PopExecute();
  if (exec != nullptr && !exec->open && exec->pending == 0) {
    Complete(exec.get(), now, pgwire::kSuccessfulCompletion,
             "portal closed before all its rows were fetched", out);
  }
}

void ResultTracker::EmptyQuery(absl::Time now, std::vector<Completion>* out) {
  Entry* head = ResultHead();
  if (head == nullptr || head->kind != Kind::kExecute) return;
  std::shared_ptr<Exec> exec = head->exec;
  Answering(exec);
  PopExecute();
  Complete(exec.get(), now, pgwire::kSuccessfulCompletion, "empty query", out);
}

void ResultTracker::Error(absl::string_view sqlstate, absl::Time now,
                          std::vector<Completion>* out) {
  if (batch_error_.empty()) batch_error_ = std::string(sqlstate);
  Entry* head = Head();
  if (head == nullptr) return;
  if (AnsweredByOneMessage(head->kind)) {
    // The error answers this message (PostgreSQL skips the rest of the
    // batch). A Bind that fails fails its execution: it never runs.
    std::shared_ptr<Exec> exec =
        head->kind == Kind::kBind ? head->exec : nullptr;
    Answering(exec);
    queue_.pop_front();
    if (exec != nullptr) {
      if (exec->sqlstate.empty()) exec->sqlstate = std::string(sqlstate);
      exec->last = now;
      Complete(exec.get(), now, std::string(sqlstate),
               "not run: its Bind failed", out);
    }
    return;
  }
  std::shared_ptr<Exec> exec = head->exec;
  Answering(exec);
  if (exec != nullptr) {
    if (exec->sqlstate.empty()) exec->sqlstate = std::string(sqlstate);
    exec->last = now;
  }
  if (head->kind == Kind::kExecute) {
    PopExecute();
    Complete(exec.get(), now, std::string(sqlstate), "", out);
  }
}

void ResultTracker::ReadyForQuery(absl::Time now,
                                  std::vector<Completion>* out) {
  while (!queue_.empty() && queue_.front().batch <= done_ + 1) {
    const Kind kind = queue_.front().kind;
    std::shared_ptr<Exec> owned = std::move(queue_.front().exec);
    queue_.pop_front();
    Exec* exec = owned.get();
    if (exec == nullptr) continue;
    if (AnsweredByOneMessage(kind)) {
      // A Bind skipped after an earlier error: its execution did not run
      // either (its Execute, if any, says so below).
      if (kind == Kind::kBind && exec->pending == 0 && !batch_error_.empty()) {
        Complete(exec, now, batch_error_,
                 absl::StrCat("not run: an earlier message of its pipeline "
                              "failed (", batch_error_, ")"),
                 out);
      }
    } else if (kind == Kind::kExecute) {
      --exec->pending;
      Complete(exec, now, batch_error_,
               batch_error_.empty()
                   ? "no answer before Sync"
                   : absl::StrCat("not run: an earlier message of its "
                                  "pipeline failed (",
                                  batch_error_, ")"),
               out);
    } else {
      Complete(exec, now,
               exec->sqlstate.empty() ? pgwire::kSuccessfulCompletion
                                      : exec->sqlstate,
               "", out);
    }
    Recycle(std::move(owned));
  }
  ++done_;
  batch_error_.clear();
}

void ResultTracker::Finish(absl::string_view why, absl::Time now,
                           std::vector<Completion>* out) {
  for (Entry& entry : queue_) {
    // (A Bind's execution is its Execute's, or its portal's below.)
    if (AnsweredByOneMessage(entry.kind)) continue;
    Complete(entry.exec.get(), now, "", absl::StrCat("no answer: ", why), out);
  }
  queue_.clear();
  for (auto& [name, exec] : portals_) {
    if (exec->suspended) {
      Complete(exec.get(), exec->last, pgwire::kSuccessfulCompletion,
               absl::StrCat("portal still open when the session ended: ", why),
               out);
    } else {
      Complete(exec.get(), exec->last, "",
               "not executed: the portal was bound but never executed", out);
    }
  }
  portals_.clear();
}

}  // namespace warden::dataplane::stages
