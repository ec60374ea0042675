#include "controlplane/store/store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "controlplane/store/rocksdb_util.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/perf_level.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"

namespace warden::controlplane::store {
namespace {

// In the order of the enum (Handle() indexes by it).
constexpr Column kColumns[] = {
    Column::kBundles,      Column::kTokens,      Column::kFleet,
    Column::kAudit,        Column::kDirectory,   Column::kAuditLeaves,
    Column::kAuditHashes,  Column::kAuditDigests};
constexpr char kMetaColumn[] = "meta";
// Keys of the meta column.
constexpr char kAppliedIndexKey[] = "applied_index";
constexpr char kLogFingerprintKey[] = "log_fingerprint";
constexpr char kSchemaVersionKey[] = "schema_version";
// Bump when the meta layout or the set of columns changes incompatibly.
// 1: the audit log's leaves, leaf hashes and digests in kAudit.
// 2: each of those in its own column (MigrateAuditColumns moves them).
constexpr char kSchemaVersion[] = "2";
constexpr char kSchemaVersionBeforeAuditColumns[] = "1";

// What version 2 moved out of kAudit: keys with this prefix, unchanged,
// to this column.
struct AuditMove {
  const char* prefix;
  Column to;
};
constexpr AuditMove kAuditMoves[] = {
    {"leaf/", Column::kAuditLeaves},
    {"hash/", Column::kAuditHashes},
    {"dig/", Column::kAuditDigests},
};
// Keys moved per atomic batch of the migration (a leaf is about 400
// bytes; a batch stays a few MB).
constexpr size_t kMigrationBatchKeys = 10000;

// The smallest key after every key starting with `prefix` (prefixes here
// are ASCII, never ending in 0xff).
std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  ++end.back();
  return end;
}

// RocksDB counts comparisons, bytes and the like per thread unless told
// not to (PerfLevel kEnableCount is its default): every key comparison of
// a memtable insert then reaches a thread_local of librocksdb.so through
// __tls_get_addr (about 2% of warden-control's CPU at 1,000 events per
// Append). Nothing here reads those counters. The level is the calling
// thread's, so it is set by each call that reaches RocksDB.
void NoPerfCounters() { rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable); }

rocksdb::ColumnFamilyOptions OptionsFor(absl::string_view name) {
  rocksdb::ColumnFamilyOptions options;
  // Leaf hashes and digests are SHA-256 outputs: compressing their blocks
  // costs a pass over them at every flush and saves nothing.
  if (name == "audit_hashes" || name == "audit_digests") {
    options.compression = rocksdb::kNoCompression;
  }
  return options;
}

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

}  // namespace

absl::string_view ColumnName(Column column) {
  switch (column) {
    case Column::kBundles:
      return "bundles";
    case Column::kTokens:
      return "tokens";
    case Column::kFleet:
      return "fleet";
    case Column::kAudit:
      return "audit";
    case Column::kDirectory:
      return "directory";
    case Column::kAuditLeaves:
      return "audit_leaves";
    case Column::kAuditHashes:
      return "audit_hashes";
    case Column::kAuditDigests:
      return "audit_digests";
  }
  return "";
}

void Batch::Put(Column column, std::string key, std::string value) {
  ops_.push_back(Op{column, std::move(key), std::move(value), false});
}

void Batch::Delete(Column column, std::string key) {
  ops_.push_back(Op{column, std::move(key), std::string(), true});
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  WARDEN_RETURN_IF_ERROR(CheckDirectoryPath(path));

  std::vector<std::string> known = {rocksdb::kDefaultColumnFamilyName,
                                    kMetaColumn};
  for (Column c : kColumns) known.emplace_back(ColumnName(c));

  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  // Batches applied without RocksDB's write-ahead log
  // (Durability::kReplayable) reach the disk when memtables are flushed:
  // all column families together, so that what is on disk is always a
  // prefix of the applied batches with the applied index of that prefix
  // (the meta column's), whatever a crash interrupts.
  options.atomic_flush = true;
  // After a power loss, the write-ahead log (synced batches, fleet
  // observations) is replayed up to its first incomplete record and no
  // further. RocksDB's default, stated here because the store depends on
  // it.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;

  // RocksDB must open every existing column family; one we do not know means
  // a newer (or foreign) database, which we refuse rather than ignore.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(options, path, &existing).ok()) {
    for (const std::string& name : existing) {
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        return absl::FailedPreconditionError(
            absl::StrCat("store ", path, " has unknown column family '", name,
                         "' (known: ", absl::StrJoin(known, ", "), ")"));
      }
    }
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : known) {
    descriptors.emplace_back(name, OptionsFor(name));
  }
  std::unique_ptr<Store> store(new Store());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s =
      rocksdb::DB::Open(options, path, descriptors, &handles, &store->db_);
  if (!s.ok()) return ToAbslStatus(s, absl::StrCat("open store ", path));
  // handles follow `known`: default, meta, then kColumns in order.
  store->handles_ = handles;
  store->default_ = handles[0];
  store->meta_ = handles[1];

  std::string value;
  s = store->db_->Get(rocksdb::ReadOptions(), store->meta_, kSchemaVersionKey,
                      &value);
  if (s.IsNotFound()) {
    // Every build wrote the version at the first open: a database
    // without one is one this Open created.
    rocksdb::WriteOptions sync;
    sync.sync = true;
    s = store->db_->Put(sync, store->meta_, kSchemaVersionKey, kSchemaVersion);
    if (!s.ok()) {
      return ToAbslStatus(s, absl::StrCat("initialize store ", path));
    }
  } else if (!s.ok()) {
    return ToAbslStatus(s, absl::StrCat("read schema version of ", path));
  } else if (value == kSchemaVersionBeforeAuditColumns) {
    // Once per data directory; an older build cannot open it afterwards.
    spdlog::info("store {}: moving the audit log to its own columns (store "
                 "format {} to {}; an older warden-control cannot open it "
                 "afterwards)",
                 path, kSchemaVersionBeforeAuditColumns, kSchemaVersion);
    const absl::Time started = absl::Now();
    WARDEN_RETURN_IF_ERROR(store->MigrateAuditColumns(path));
    spdlog::info("store {}: moved in {}", path,
                 absl::FormatDuration(absl::Now() - started));
  } else if (value != kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("store ", path, " has schema version '", value,
                     "', this build knows '", kSchemaVersion, "'"));
  }

  s = store->db_->Get(rocksdb::ReadOptions(), store->meta_, kAppliedIndexKey,
                      &value);
  if (s.ok()) {
    absl::StatusOr<uint64_t> index = DecodeIndex(value);
    if (!index.ok()) {
      return absl::DataLossError(absl::StrCat(
          "store ", path, ": applied index: ", index.status().message()));
    }
    absl::MutexLock lock(&store->mu_);
    store->applied_index_ = *index;
  } else if (!s.IsNotFound()) {
    return ToAbslStatus(s, absl::StrCat("read applied index of ", path));
  }
  return store;
}

absl::Status Store::MigrateAuditColumns(const std::string& path) {
  // Each batch puts some keys in their new column and deletes them from
  // kAudit (one range deletion), in RocksDB's write-ahead log: after a
  // crash every key is in exactly one of the two, and the next Open moves
  // what is left. Nothing else writes before Open returns, and the
  // version says 2 only once everything has moved.
  rocksdb::ColumnFamilyHandle* audit = Handle(Column::kAudit);
  for (const AuditMove& move : kAuditMoves) {
    const absl::string_view prefix = move.prefix;
    rocksdb::ColumnFamilyHandle* to = Handle(move.to);
    bool more = true;
    while (more) {
      rocksdb::WriteBatch batch;
      std::string last;
      size_t keys = 0;
      {
        std::unique_ptr<rocksdb::Iterator> it(
            db_->NewIterator(rocksdb::ReadOptions(), audit));
        for (it->Seek(ToSlice(prefix));
             it->Valid() && keys < kMigrationBatchKeys; it->Next()) {
          absl::string_view key(it->key().data(), it->key().size());
          if (!absl::StartsWith(key, prefix)) break;
          rocksdb::Status s = batch.Put(to, it->key(), it->value());
          if (!s.ok()) return ToAbslStatus(s, "build migration batch");
          last.assign(key.data(), key.size());
          ++keys;
        }
        if (!it->status().ok()) {
          return ToAbslStatus(it->status(),
                              absl::StrCat("migrate store ", path));
        }
        more = keys == kMigrationBatchKeys;
      }
      if (keys == 0) break;
      // [prefix, last + "\0"): exactly the keys just copied.
      last.push_back('\0');
      rocksdb::Status s = batch.DeleteRange(audit, ToSlice(prefix), last);
      if (!s.ok()) return ToAbslStatus(s, "build migration batch");
      s = db_->Write(rocksdb::WriteOptions(), &batch);
      if (!s.ok()) {
        return ToAbslStatus(
            s, absl::StrCat("migrate store ", path, ": move ", prefix));
      }
    }
    // Drop what the range deletions cover from kAudit's files now rather
    // than at some later compaction.
    const std::string end = PrefixEnd(prefix);
    const rocksdb::Slice begin_slice = ToSlice(prefix);
    const rocksdb::Slice end_slice = ToSlice(end);
    rocksdb::Status s = db_->CompactRange(rocksdb::CompactRangeOptions(), audit,
                                          &begin_slice, &end_slice);
    if (!s.ok()) {
      return ToAbslStatus(s, absl::StrCat("migrate store ", path,
                                          ": compact ", prefix));
    }
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;  // after every move in the same write-ahead log
  rocksdb::Status s = db_->Put(sync, meta_, kSchemaVersionKey, kSchemaVersion);
  if (!s.ok()) {
    return ToAbslStatus(s, absl::StrCat("migrate store ", path,
                                        ": write schema version"));
  }
  return absl::OkStatus();
}

Store::~Store() {
  if (db_ == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    db_->DestroyColumnFamilyHandle(handle);
  }
  db_->Close();
  delete db_;
}

rocksdb::ColumnFamilyHandle* Store::Handle(Column column) const {
  size_t i = 2 + static_cast<size_t>(column);
  return i < handles_.size() ? handles_[i] : nullptr;
}

absl::StatusOr<std::string> Store::Get(Column column,
                                       absl::string_view key) const {
  rocksdb::ColumnFamilyHandle* handle = Handle(column);
  if (handle == nullptr) return absl::InvalidArgumentError("unknown column");
  NoPerfCounters();
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handle, ToSlice(key), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("no key '", absl::CHexEscape(key),
                                            "' in ", ColumnName(column)));
  }
  if (!s.ok())
    return ToAbslStatus(s, absl::StrCat("get from ", ColumnName(column)));
  return value;
}

absl::StatusOr<std::vector<KeyValue>> Store::Scan(
    Column column, absl::string_view prefix) const {
  rocksdb::ColumnFamilyHandle* handle = Handle(column);
  if (handle == nullptr) return absl::InvalidArgumentError("unknown column");
  NoPerfCounters();
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handle));
  std::vector<KeyValue> out;
  for (it->Seek(ToSlice(prefix)); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, prefix)) break;
    out.push_back(KeyValue{std::string(key), it->value().ToString()});
  }
  if (!it->status().ok()) {
    return ToAbslStatus(it->status(),
                        absl::StrCat("scan ", ColumnName(column)));
  }
  return out;
}

absl::Status Store::Apply(const Batch& batch, uint64_t log_index,
                          Durability durability) {
  absl::MutexLock lock(&mu_);
  if (log_index == 0) {
    return absl::InvalidArgumentError("log index 0 is not a log entry");
  }
  if (log_index <= applied_index_) {
    return absl::FailedPreconditionError(
        absl::StrCat("log index ", log_index,
                     " is not after the applied index ", applied_index_));
  }
  // Sized once: a batch of audit leaves is hundreds of kilobytes, and
  // growing it by doubling copies it again and again.
  size_t bytes = 64;
  for (const Batch::Op& op : batch.ops()) {
    bytes += op.key.size() + op.value.size() + 16;
  }
  rocksdb::WriteBatch write(bytes);
  for (const Batch::Op& op : batch.ops()) {
    rocksdb::ColumnFamilyHandle* handle = Handle(op.column);
    if (handle == nullptr) return absl::InvalidArgumentError("unknown column");
    rocksdb::Status s =
        op.is_delete ? write.Delete(handle, ToSlice(op.key))
                     : write.Put(handle, ToSlice(op.key), ToSlice(op.value));
    if (!s.ok()) return ToAbslStatus(s, "build write batch");
  }
  rocksdb::Status s =
      write.Put(meta_, kAppliedIndexKey, EncodeIndex(log_index));
  if (!s.ok()) return ToAbslStatus(s, "build write batch");
  if (!batch.log_fingerprint().empty()) {
    s = write.Put(meta_, kLogFingerprintKey, ToSlice(batch.log_fingerprint()));
    if (!s.ok()) return ToAbslStatus(s, "build write batch");
  }
  NoPerfCounters();
  rocksdb::WriteOptions options;
  options.sync = durability == Durability::kSynced;
  // A replayable batch is in the log that replays it: writing it to
  // RocksDB's own write-ahead log as well only copied every audit leaf
  // once more.
  options.disableWAL = durability == Durability::kReplayable;
  s = db_->Write(options, &write);
  if (!s.ok()) {
    return ToAbslStatus(s, absl::StrCat("apply log index ", log_index));
  }
  applied_index_ = log_index;
  return absl::OkStatus();
}

absl::Status Store::PutObservation(Column column, absl::string_view key,
                                   absl::string_view value) {
  if (column != Column::kFleet) {
    return absl::InvalidArgumentError(
        "only the fleet column holds observations; replicated state goes "
        "through Apply");
  }
  rocksdb::WriteOptions options;  // not synced: see the header.
  rocksdb::Status s =
      db_->Put(options, Handle(column), ToSlice(key), ToSlice(value));
  if (!s.ok()) return ToAbslStatus(s, "write fleet observation");
  return absl::OkStatus();
}

uint64_t Store::applied_index() const {
  absl::MutexLock lock(&mu_);
  return applied_index_;
}

absl::StatusOr<std::string> Store::log_fingerprint() const {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_, kLogFingerprintKey, &value);
  if (s.IsNotFound()) return std::string();
  if (!s.ok()) return ToAbslStatus(s, "read the log fingerprint");
  return value;
}

}  // namespace warden::controlplane::store
