// The control plane's state: a RocksDB database with one column family per
// kind of state. Every change is a Batch applied together with the index of
// the log entry that produced it, in one synced WriteBatch, so the state and
// "how far the log has been applied" never disagree after a crash.
#ifndef WARDEN_CONTROLPLANE_STORE_STORE_H_
#define WARDEN_CONTROLPLANE_STORE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace warden::controlplane::store {

// The column families callers can read and write. Keys and values are opaque
// bytes whose layout belongs to the package that owns the column (see
// README.md). The store also keeps a private "meta" column (applied index,
// schema version) that callers cannot touch.
enum class Column {
  kBundles,  // policy bundles, their sources and history (controlplane/bundles)
  kTokens,   // API token hashes and metadata (controlplane/api)
  kFleet,    // last known state of each proxy (controlplane/distribution)
  kAudit,    // the audit log: leaves, tree, per-source sequences
             // (controlplane/audit)
  kDirectory,  // users and groups provisioned over SCIM
               // (controlplane/directory); added later: an older database
               // gets the column at its next open.
  // The audit log's per-event keys, one kind per column (schema version
  // 2; version 1 kept them in kAudit). Leaves and hashes are written in
  // ascending key order only, so their flushed files never overlap and
  // compactions move them instead of rewriting them; digests ascend per
  // source. Open moves a version 1 database's keys here (see README.md).
  kAuditLeaves,   // "leaf/<index>" -> leaf bytes
  kAuditHashes,   // "hash/<index>" -> leaf hash
  kAuditDigests,  // "dig/<source>/<sequence>" -> SHA-256 of the event
};

// ColumnName(Column::kBundles) is "bundles", the RocksDB column family name.
absl::string_view ColumnName(Column column);

// A set of writes applied atomically by Store::Apply. Not thread-safe; build
// it in one thread, then hand it to Apply.
//   Batch batch;
//   batch.Put(Column::kBundles, "rev/7", bytes);
//   batch.Delete(Column::kTokens, "tok_1");
class Batch {
 public:
  struct Op {
    Column column;
    std::string key;
    std::string value;  // unused for deletes.
    bool is_delete = false;
  };

  void Put(Column column, std::string key, std::string value);
  void Delete(Column column, std::string key);
  // Room for `n` operations in all (a caller that knows how many it adds:
  // growing by doubling moves every one again).
  void Reserve(size_t n) { ops_.reserve(n); }

  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }

  // What identifies, in the log, the entry this batch applies (a shared
  // log's batch key; Log::Fingerprint), kept with the applied index so
  // that a restarted replica can tell its log was rewritten under it.
  // Empty: nothing recorded (the single-node log needs none).
  void set_log_fingerprint(std::string fingerprint) {
    log_fingerprint_ = std::move(fingerprint);
  }
  const std::string& log_fingerprint() const { return log_fingerprint_; }

 private:
  std::vector<Op> ops_;
  std::string log_fingerprint_;
};

struct KeyValue {
  std::string key;
  std::string value;
};

// Store owns an open RocksDB database. Thread-safe: reads run concurrently
// with each other and with Apply; Apply calls are serialized.
class Store {
 public:
  // Open opens (creating if missing) the database in directory `path`, with
  // every column family. A database of schema version 1 (an older build's)
  // is migrated first: its audit keys move from kAudit to the columns of
  // their kind, in batches that each move some keys atomically, so an
  // interrupted migration resumes at the next Open. Returns kFailedPrecondition if `path` exists and is
  // not a directory, or if the database has a schema version or column
  // families this code does not know; kDataLoss on corruption; other RocksDB
  // failures (unwritable path, database locked by another process) as
  // kInternal/kUnavailable, the message naming the path.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  // Closes the database, flushing what kReplayable applies left in
  // memory.
  ~Store();

  // Get returns the value of `key` in `column`, or kNotFound if absent.
  absl::StatusOr<std::string> Get(Column column, absl::string_view key) const;

  // Scan returns every key in `column` starting with `prefix`, in byte-wise
  // key order; "" scans the whole column. Reads one consistent snapshot:
  // a concurrent Apply is seen entirely or not at all.
  absl::StatusOr<std::vector<KeyValue>> Scan(Column column,
                                             absl::string_view prefix) const;

  // Whether Apply returns only once the write is on disk (kSynced), or
  // once it is in memory (kReplayable: not in RocksDB's write-ahead log;
  // it reaches the disk when the memtables are flushed, every column
  // family at once, or when the store is closed). After a crash of the
  // process or the machine, the store comes back as a consistent prefix
  // of what was applied, with the applied index of that prefix.
  // kReplayable is for a caller that applies what a synced log already
  // holds and replays the log past the store's applied index before it
  // serves (the state machine's CatchUp). Whatever drops log entries
  // (snapshots, truncating the log's front) must flush the store first.
  enum class Durability { kSynced, kReplayable };

  // Apply writes `batch` and records `log_index` as the applied index, in one
  // RocksDB WriteBatch: after a crash either all of it is there or none.
  // An empty batch only advances the applied index (a log entry that
  // changes no state).
  //
  // `log_index` must be greater than applied_index(); gaps are allowed (not
  // every log entry needs to reach this store). Returns kInvalidArgument for
  // 0, and kFailedPrecondition without writing anything for an index <=
  // applied_index() — also when equal: replaying an entry twice is a bug in
  // the caller, who resumes the log at applied_index() + 1.
  absl::Status Apply(const Batch& batch, uint64_t log_index,
                     Durability durability = Durability::kSynced);

  // PutObservation writes one key of node-local, non-replicated state (the
  // fleet view: what proxies last reported to this node) outside the log:
  // not synced (a crash may lose the last writes, which the next report
  // restores) and without touching the applied index. Only Column::kFleet.
  absl::Status PutObservation(Column column, absl::string_view key,
                              absl::string_view value);

  // The index of the last applied log entry; 0 for a new database.
  uint64_t applied_index() const;

  // The log fingerprint of the last batch applied with one ("" if none).
  absl::StatusOr<std::string> log_fingerprint() const;

 private:
  Store() = default;
  rocksdb::ColumnFamilyHandle* Handle(Column column) const;
  // Schema version 1 -> 2: moves the audit keys to their own columns.
  absl::Status MigrateAuditColumns(const std::string& path);

  rocksdb::DB* db_ = nullptr;
  // Owned; indexed by static_cast<int>(Column); meta_ is the private column.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* default_ = nullptr;

  mutable absl::Mutex mu_;
  uint64_t applied_index_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace warden::controlplane::store

#endif  // WARDEN_CONTROLPLANE_STORE_STORE_H_
