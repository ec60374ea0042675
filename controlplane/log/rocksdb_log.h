// RocksDbLog: the single-node Log, in its own RocksDB database (a directory
// next to the store's, not a column family of it: the store's writes go only
// through Store::Apply, and the etcd log that replaces this one in a cluster
// is likewise separate from each replica's store).
#ifndef WARDEN_CONTROLPLANE_LOG_ROCKSDB_LOG_H_
#define WARDEN_CONTROLPLANE_LOG_ROCKSDB_LOG_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controlplane/log/log.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace warden::controlplane::log {

// Thread-safe. Appends are serialized and each is one synced RocksDB write
// (one fsync per Append, or per AppendBatch: the state machine's group
// commit hands concurrent entries over together). Reads run concurrently
// with appends.
class RocksDbLog : public Log {
 public:
  // Open opens (creating if missing) the log in directory `path`. Returns
  // kFailedPrecondition if `path` exists and is not a directory; kDataLoss if
  // the stored entries do not start at 1 or a key is malformed; other RocksDB
  // failures with the path in the message.
  static absl::StatusOr<std::unique_ptr<RocksDbLog>> Open(
      const std::string& path);

  RocksDbLog(const RocksDbLog&) = delete;
  RocksDbLog& operator=(const RocksDbLog&) = delete;
  ~RocksDbLog() override;

  absl::StatusOr<uint64_t> Append(std::string entry) override;
  absl::StatusOr<uint64_t> AppendBatch(
      std::vector<std::string> entries) override;
  absl::StatusOr<uint64_t> AppendBatchAt(
      uint64_t first, const std::vector<std::string>& entries) override;
  // Returns kDataLoss if an index in the range is missing on disk.
  absl::StatusOr<std::vector<Entry>> Read(uint64_t from, size_t max) override;
  uint64_t LastIndex() const override;

 private:
  RocksDbLog() = default;
  absl::StatusOr<uint64_t> AppendLocked(
      const std::vector<std::string>& entries)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  rocksdb::DB* db_ = nullptr;
  std::string path_;
  mutable absl::Mutex mu_;
  uint64_t last_index_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace warden::controlplane::log

#endif  // WARDEN_CONTROLPLANE_LOG_ROCKSDB_LOG_H_
