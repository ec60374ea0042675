#include "controlplane/state/state_machine.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "controlplane/audit/ledger.h"
#include "common/names.h"
#include "spdlog/spdlog.h"

namespace warden::controlplane::state {

std::string RevisionKey(uint64_t revision) {
  std::string digits = std::to_string(revision);
  return absl::StrCat(kRevisionPrefix, std::string(20 - digits.size(), '0'),
                      digits);
}

StateMachine::StateMachine(log::Log* log, store::Store* store)
    : log_(log), store_(store), audit_(store) {}

std::string DirectoryNameKey(absl::string_view user_name) {
  return absl::StrCat(kDirectoryNamePrefix, FoldName(user_name));
}

absl::Status StateMachine::StageDirectory(
    const warden::v1::DirectoryChange& change, uint64_t index,
    store::Batch* batch) const {
  using store::Column;
  switch (change.change_case()) {
    case warden::v1::DirectoryChange::kPutUser: {
      const warden::v1::DirectoryUser& user = change.put_user();
      if (user.id().empty() || user.user_name().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "log entry ", index, ": directory user without id or userName"));
      }
      const std::string key = absl::StrCat(kDirectoryUserPrefix, user.id());
      // The name index follows renames and deletions.
      auto old_bytes = store_->Get(Column::kDirectory, key);
      if (old_bytes.ok()) {
        warden::v1::DirectoryUser old;
        if (old.ParseFromString(*old_bytes) && !old.deleted()) {
          const std::string old_name = DirectoryNameKey(old.user_name());
          auto holder = store_->Get(Column::kDirectory, old_name);
          if (holder.ok() && *holder == user.id()) {
            batch->Delete(Column::kDirectory, old_name);
          }
        }
      } else if (!absl::IsNotFound(old_bytes.status())) {
        return old_bytes.status();
      }
      if (!user.deleted()) {
        batch->Put(Column::kDirectory, DirectoryNameKey(user.user_name()),
                   user.id());
      }
      batch->Put(Column::kDirectory, key, user.SerializeAsString());
      return absl::OkStatus();
    }
    case warden::v1::DirectoryChange::kPutGroup:
      if (change.put_group().id().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("log entry ", index, ": directory group without id"));
      }
      batch->Put(Column::kDirectory,
                 absl::StrCat(kDirectoryGroupPrefix, change.put_group().id()),
                 change.put_group().SerializeAsString());
      return absl::OkStatus();
    case warden::v1::DirectoryChange::kDeleteGroup:
      batch->Delete(Column::kDirectory,
                    absl::StrCat(kDirectoryGroupPrefix, change.delete_group()));
      return absl::OkStatus();
    case warden::v1::DirectoryChange::CHANGE_NOT_SET:
      break;
  }
  return absl::DataLossError(absl::StrCat(
      "log entry ", index, " holds a directory change this version cannot "
      "apply"));
}

namespace {

// The log holds every entry durably before it is applied, and CatchUp
// replays whatever the store lost in a crash before anything is served:
// the store's own fsync and write-ahead log would add nothing.
constexpr store::Store::Durability kDurability =
    store::Store::Durability::kReplayable;

// How many times a commit tries again after other replicas took the index
// it was appended at (each time it first applies their entries).
constexpr int kMaxConflicts = 1000;

// Puts of audit appends one store batch may collect before it is written
// (CatchUp after a long outage would otherwise build one huge batch).
constexpr size_t kMaxStagedAuditOps = 200000;

}  // namespace

absl::Status StateMachine::Apply(const warden::v1::LogEntry& entry,
                                 uint64_t index) {
  std::vector<absl::Status> results;
  ApplyEntries({&entry}, index, &results);
  return results[0];
}

void StateMachine::ApplyEntries(
    const std::vector<const warden::v1::LogEntry*>& entries, uint64_t first,
    std::vector<absl::Status>* results) {
  results->assign(entries.size(), absl::OkStatus());
  // Audit appends staged but not written yet: entries [staged_from, i).
  size_t staged_from = 0;
  size_t i = 0;
  auto fail_from = [&](size_t from, const absl::Status& s) {
    for (size_t k = from; k < entries.size(); ++k) (*results)[k] = s;
  };
  // Writes the staged audit appends, entries [staged_from, i).
  auto write_staged = [&]() -> absl::Status {
    if (staged_from == i) return absl::OkStatus();
    store::Batch batch;
    audit_.TakeStaged(&batch);
    batch.set_log_fingerprint(log_->Fingerprint(first + i - 1));
    absl::Status s = store_->Apply(batch, first + i - 1, kDurability);
    audit_.Written(s.ok());
    if (!s.ok()) fail_from(staged_from, s);
    staged_from = i;
    return s;
  };
  for (; i < entries.size(); ++i) {
    const warden::v1::LogEntry& entry = *entries[i];
    const uint64_t index = first + i;
    if (entry.change_case() == warden::v1::LogEntry::kAppendAudit) {
      if (audit_.staged_ops() >= kMaxStagedAuditOps) {
        if (!write_staged().ok()) return;
      }
      if (absl::Status s = audit_.Stage(entry.append_audit()); !s.ok()) {
        audit_.Written(false);
        fail_from(staged_from, s);
        return;
      }
      continue;
    }
    if (!write_staged().ok()) return;
    store::Batch batch;
    absl::Status s = Stage(entry, index, &batch);
    batch.set_log_fingerprint(log_->Fingerprint(index));
    if (s.ok()) s = store_->Apply(batch, index, kDurability);
    if (!s.ok()) {
      fail_from(i, s);
      return;
    }
    if (entry.change_case() == warden::v1::LogEntry::kDirectory) {
      directory_applied_.fetch_add(1, std::memory_order_acq_rel);
    }
    staged_from = i + 1;
  }
  write_staged().IgnoreError();  // recorded in `results`
}

absl::Status StateMachine::Stage(const warden::v1::LogEntry& entry,
                                 uint64_t index, store::Batch* out) const {
  store::Batch& batch = *out;
  switch (entry.change_case()) {
    case warden::v1::LogEntry::kPutToken: {
      const auto& record = entry.put_token();
      if (record.info().id().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("log entry ", index, ": token without an id"));
      }
      batch.Put(store::Column::kTokens,
                absl::StrCat(kTokenPrefix, record.info().id()),
                record.SerializeAsString());
      break;
    }
    case warden::v1::LogEntry::kPutBundle: {
      const uint64_t revision = entry.put_bundle().signed_bundle().revision();
      if (revision != index) {
        return absl::DataLossError(
            absl::StrCat("log entry ", index, " holds revision ", revision));
      }
      batch.Put(store::Column::kBundles, RevisionKey(revision),
                entry.put_bundle().SerializeAsString());
      batch.Put(store::Column::kBundles, kHeadKey, std::to_string(revision));
      break;
    }
    case warden::v1::LogEntry::kAppendAudit:
      // ApplyEntries stages these with audit_.
      return absl::InternalError("audit appends are not staged here");
    case warden::v1::LogEntry::kPutProxy: {
      const auto& record = entry.put_proxy();
      if (record.environment().empty() || record.proxy_id().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "log entry ", index, ": proxy record without environment or id"));
      }
      batch.Put(store::Column::kTokens,
                absl::StrCat(kProxyPrefix, record.environment(), "/",
                             record.proxy_id()),
                record.SerializeAsString());
      break;
    }
    case warden::v1::LogEntry::kDirectory:
      return StageDirectory(entry.directory(), index, &batch);
    case warden::v1::LogEntry::CHANGE_NOT_SET:
      // An entry from a newer version this one does not know: refusing to
      // go on is safer than skipping a change.
      return absl::DataLossError(absl::StrCat(
          "log entry ", index, " holds a change this version cannot apply"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StateMachine::Commit(
    const warden::v1::LogEntry& entry) {
  Pending pending{&entry, entry.SerializeAsString()};
  absl::MutexLock queue_lock(&queue_mu_);
  queue_.push_back(&pending);
  // A group being written may have taken this commit; otherwise, once no
  // group is being written, the first waiter writes everything queued.
  while (!pending.done && writing_) queue_cv_.Wait(&queue_mu_);
  if (pending.done) return pending.result;
  writing_ = true;
  std::vector<Pending*> group;
  group.swap(queue_);
  queue_mu_.Unlock();
  {
    absl::MutexLock lock(&mu_);
    WriteGroup(group);
  }
  queue_mu_.Lock();
  for (Pending* p : group) p->done = true;
  writing_ = false;
  queue_cv_.SignalAll();
  return pending.result;
}

void StateMachine::WriteGroup(const std::vector<Pending*>& group) {
  // In runs the log takes in one append (a shared log's transaction
  // limits; a single-node log takes the whole group).
  const size_t max_entries = std::max<size_t>(1, log_->MaxBatchEntries());
  const size_t max_bytes = log_->MaxBatchBytes();
  size_t begin = 0;
  while (begin < group.size()) {
    size_t end = begin;
    size_t bytes = 0;
    while (end < group.size() && end - begin < max_entries &&
           (end == begin || bytes + group[end]->bytes.size() <= max_bytes)) {
      bytes += group[end]->bytes.size();
      ++end;
    }
    WriteRun(group, begin, end);
    begin = end;
  }
}

void StateMachine::WriteRun(const std::vector<Pending*>& group, size_t begin,
                            size_t end) {
  auto fail = [&](const absl::Status& s) {
    for (size_t i = begin; i < end; ++i) group[i]->result = s;
  };
  std::vector<std::string> bytes;
  std::vector<const warden::v1::LogEntry*> entries;
  bytes.reserve(end - begin);
  entries.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) {
    bytes.push_back(std::move(group[i]->bytes));
    entries.push_back(group[i]->entry);
  }
  // What is in the log and not in the store lands first: an earlier apply
  // that failed after its append (the store accepts any higher index and
  // would skip it).
  if (absl::Status s = CatchUpLocked(); !s.ok()) return fail(s);
  auto first = log_->AppendBatch(std::move(bytes));
  if (!first.ok()) return fail(first.status());
  // With a shared log, other replicas' entries may have landed before this
  // group's: they are applied first, in log order.
  if (absl::Status s = CatchUpLocked(*first - 1); !s.ok()) return fail(s);
  if (store_->applied_index() + 1 != *first) {
    return fail(absl::InternalError(absl::StrCat(
        "the log put entry ", *first, " after the store's applied index ",
        store_->applied_index())));
  }
  std::vector<absl::Status> applied;
  ApplyEntries(entries, *first, &applied);
  for (size_t i = 0; i < entries.size(); ++i) {
    // A failed apply is retried by the next commit's (or start's) CatchUp.
    if (applied[i].ok()) {
      group[begin + i]->result = *first + i;
    } else {
      group[begin + i]->result = applied[i];
    }
  }
}

absl::StatusOr<uint64_t> StateMachine::CommitAt(
    const std::function<absl::StatusOr<warden::v1::LogEntry>(uint64_t)>&
        build) {
  absl::MutexLock lock(&mu_);
  for (int attempt = 0;; ++attempt) {
    if (absl::Status s = CatchUpLocked(); !s.ok()) return s;
    const uint64_t next = store_->applied_index() + 1;  // as in WriteRun
    auto entry = build(next);
    if (!entry.ok()) return entry.status();
    auto index = log_->AppendBatchAt(next, {entry->SerializeAsString()});
    if (absl::IsAborted(index.status()) && attempt < kMaxConflicts) {
      continue;  // another replica took `next`: build for the index after
    }
    if (!index.ok()) return index.status();
    if (*index != next) {
      return absl::InternalError(absl::StrCat(
          "the log assigned index ", *index, " instead of ", next));
    }
    if (absl::Status applied = Apply(*entry, *index); !applied.ok()) {
      return applied;
    }
    return *index;
  }
}

void StateMachine::StartFollowing(
    std::function<void(uint64_t applied_index)> applied) {
  follower_ = std::thread([this, applied = std::move(applied)] {
    absl::Duration backoff = absl::Milliseconds(100);
    std::string last_error;
    absl::Time last_check = absl::InfinitePast();
    while (!stop_following_.HasBeenNotified()) {
      // The watch alone does not tell a quiet log from an unreachable one:
      // ask where the log ends every 2 s (LastConfirmedCurrent).
      if (absl::Now() - last_check >= absl::Seconds(2)) {
        last_check = absl::Now();
        if (log_->Refresh().ok()) {
          confirmed_unix_ns_.store(absl::ToUnixNanos(absl::Now()));
        }
      }
      const uint64_t known = store_->applied_index();
      log_->WaitBeyond(known, absl::Now() + absl::Milliseconds(500));
      if (stop_following_.HasBeenNotified()) break;
      if (log_->LastIndex() <= known) continue;
      absl::Status s;
      uint64_t now_applied = known;
      {
        absl::MutexLock lock(&mu_);
        s = CatchUpLocked();
        now_applied = store_->applied_index();
      }
      if (now_applied > known && applied) applied(now_applied);
      if (!s.ok()) {
        if (s.ToString() != last_error) {
          spdlog::warn("state: cannot apply the log's new entries: {}",
                       s.ToString());
          last_error = s.ToString();
        }
        if (stop_following_.WaitForNotificationWithTimeout(backoff)) break;
        backoff = std::min(backoff * 2, absl::Seconds(5));
        continue;
      }
      last_error.clear();
      backoff = absl::Milliseconds(100);
    }
  });
}

void StateMachine::StopFollowing() {
  // Once: at shutdown and again from the destructor (a second Notify
  // aborts the process).
  if (!stop_following_.HasBeenNotified()) stop_following_.Notify();
  if (follower_.joinable()) follower_.join();
}

StateMachine::~StateMachine() { StopFollowing(); }

absl::Status StateMachine::CatchUp() {
  absl::MutexLock lock(&mu_);
  // The entry this replica applied last must still be where it was: a log
  // rewritten while the replica was down (batches deleted and others
  // written in their place) would otherwise go on from a state the log no
  // longer leads to (red team: a silent fork between replicas).
  const uint64_t applied = store_->applied_index();
  if (applied > 0 && applied <= log_->LastIndex()) {
    auto recorded = store_->log_fingerprint();
    if (!recorded.ok()) return recorded.status();
    const std::string now = log_->Fingerprint(applied);
    if (!recorded->empty() && *recorded != now) {
      return absl::DataLossError(absl::StrCat(
          "the log's entry ", applied, " (the last this replica applied) is "
          "now in '", absl::CHexEscape(now), "', but it was applied from '",
          absl::CHexEscape(*recorded),
          "': the log was rewritten behind Warden's back"));
    }
  }
  return CatchUpLocked();
}

absl::Status StateMachine::Sync() {
  auto end = log_->Refresh();
  if (!end.ok()) return end.status();
  confirmed_unix_ns_.store(absl::ToUnixNanos(absl::Now()));
  if (store_->applied_index() >= *end) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return CatchUpLocked(*end);
}

absl::Status StateMachine::CatchUpLocked(uint64_t through) {
  uint64_t next = store_->applied_index() + 1;
  const uint64_t log_last = log_->LastIndex();
  if (next > log_last + 1) {
    return absl::DataLossError(absl::StrCat(
        "the store has applied index ", next - 1,
        " but the log ends at ", log_last, "; the log was lost or replaced"));
  }
  // Already beyond `through` (applied since the caller looked): done.
  const uint64_t last = std::min(through, log_last);
  while (next <= last) {
    auto read = log_->Read(next, std::min<uint64_t>(1024, last - next + 1));
    if (!read.ok()) return read.status();
    if (read->empty()) break;
    std::vector<warden::v1::LogEntry> parsed(read->size());
    std::vector<const warden::v1::LogEntry*> entries;
    for (size_t i = 0; i < read->size(); ++i) {
      if (!parsed[i].ParseFromString((*read)[i].data)) {
        return absl::DataLossError(
            absl::StrCat("log entry ", (*read)[i].index, " does not parse"));
      }
      entries.push_back(&parsed[i]);
    }
    std::vector<absl::Status> applied;
    ApplyEntries(entries, read->front().index, &applied);
    for (const absl::Status& s : applied) {
      if (!s.ok()) return s;
    }
    next = read->back().index + 1;
  }
  return absl::OkStatus();
}

}  // namespace warden::controlplane::state
