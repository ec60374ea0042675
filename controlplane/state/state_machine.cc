#include "controlplane/state/state_machine.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "controlplane/audit/ledger.h"
#include "common/names.h"

namespace warden::controlplane::state {

std::string RevisionKey(uint64_t revision) {
  std::string digits = std::to_string(revision);
  return absl::StrCat(kRevisionPrefix, std::string(20 - digits.size(), '0'),
                      digits);
}

StateMachine::StateMachine(log::Log* log, store::Store* store)
    : log_(log), store_(store) {}

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

absl::Status StateMachine::Apply(const warden::v1::LogEntry& entry,
                                 uint64_t index) {
  store::Batch batch;
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
    case warden::v1::LogEntry::kAppendAudit: {
      if (absl::Status s =
              audit::StageAppend(*store_, entry.append_audit(), &batch);
          !s.ok()) {
        return s;
      }
      break;
    }
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
    case warden::v1::LogEntry::kDirectory: {
      if (absl::Status s = StageDirectory(entry.directory(), index, &batch);
          !s.ok()) {
        return s;
      }
      break;
    }
    case warden::v1::LogEntry::CHANGE_NOT_SET:
      // An entry from a newer version this one does not know: refusing to
      // go on is safer than skipping a change.
      return absl::DataLossError(absl::StrCat(
          "log entry ", index, " holds a change this version cannot apply"));
  }
  return store_->Apply(batch, index);
}

absl::StatusOr<uint64_t> StateMachine::Commit(
    const warden::v1::LogEntry& entry) {
  absl::MutexLock lock(&mu_);
  // An earlier apply that failed after its append must land first, or the
  // store would skip it (it accepts any higher index).
  if (absl::Status s = CatchUpLocked(); !s.ok()) return s;
  auto index = log_->Append(entry.SerializeAsString());
  if (!index.ok()) return index.status();
  if (absl::Status applied = Apply(entry, *index); !applied.ok()) {
    return applied;  // CatchUp at the next start retries it.
  }
  return *index;
}

absl::StatusOr<uint64_t> StateMachine::CommitAt(
    const std::function<absl::StatusOr<warden::v1::LogEntry>(uint64_t)>&
        build) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CatchUpLocked(); !s.ok()) return s;
  const uint64_t next = log_->LastIndex() + 1;
  auto entry = build(next);
  if (!entry.ok()) return entry.status();
  auto index = log_->Append(entry->SerializeAsString());
  if (!index.ok()) return index.status();
  if (*index != next) {
    return absl::InternalError(absl::StrCat("the log assigned index ", *index,
                                            " instead of ", next));
  }
  if (absl::Status applied = Apply(*entry, *index); !applied.ok()) {
    return applied;
  }
  return *index;
}

absl::Status StateMachine::CatchUp() {
  absl::MutexLock lock(&mu_);
  return CatchUpLocked();
}

absl::Status StateMachine::CatchUpLocked() {
  uint64_t next = store_->applied_index() + 1;
  const uint64_t last = log_->LastIndex();
  if (next > last + 1) {
    return absl::DataLossError(absl::StrCat(
        "the store has applied index ", next - 1,
        " but the log ends at ", last, "; the log was lost or replaced"));
  }
  while (next <= last) {
    auto entries = log_->Read(next, 1024);
    if (!entries.ok()) return entries.status();
    if (entries->empty()) break;
    for (const auto& e : *entries) {
      warden::v1::LogEntry entry;
      if (!entry.ParseFromString(e.data)) {
        return absl::DataLossError(
            absl::StrCat("log entry ", e.index, " does not parse"));
      }
      if (absl::Status applied = Apply(entry, e.index); !applied.ok()) {
        return applied;
      }
      next = e.index + 1;
    }
  }
  return absl::OkStatus();
}

}  // namespace warden::controlplane::state
