// The ordered log every control-plane write goes through. Writers append an
// entry and get its index; every replica reads the log in order and applies
// each entry to its store (controlplane/store) together with the index.
// Implementations: RocksDbLog (single node, rocksdb_log.h); etcd (HA issue).
#ifndef WARDEN_CONTROLPLANE_LOG_LOG_H_
#define WARDEN_CONTROLPLANE_LOG_LOG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace warden::controlplane::log {

// One log entry: its index and the opaque bytes that were appended.
struct Entry {
  uint64_t index = 0;
  std::string data;
};

// Log: indexes start at 1 and are gap-free (entry i+1 follows entry i).
// Implementations are thread-safe.
class Log {
 public:
  virtual ~Log() = default;

  // Append durably stores `entry` and returns its index, LastIndex() + 1 at
  // the time of the call. When it returns OK the entry survives a crash.
  // Concurrent appends get distinct, consecutive indexes.
  virtual absl::StatusOr<uint64_t> Append(std::string entry) = 0;

  // AppendBatch durably stores `entries` (at least one) as consecutive
  // entries, all or none, and returns the index of the first: what a group
  // of concurrent commits shares (one synced write for all of them).
  // InvalidArgument for no entries.
  virtual absl::StatusOr<uint64_t> AppendBatch(
      std::vector<std::string> entries) = 0;

  // Read returns up to `max` entries starting at index `from`, in index
  // order. `from` == LastIndex() + 1 (or `max` == 0) returns no entries;
  // kInvalidArgument for `from` == 0, kOutOfRange for `from` >
  // LastIndex() + 1.
  //   Read(1, 100) on a log of 3 entries returns entries 1, 2, 3.
  virtual absl::StatusOr<std::vector<Entry>> Read(uint64_t from,
                                                  size_t max) = 0;

  // The index of the last appended entry; 0 for an empty log. A log with
  // several writers (etcd) answers with the last index it knows of, which
  // may lag other writers' appends until Refresh() or its watch.
  virtual uint64_t LastIndex() const = 0;

  // AppendBatchAt stores `entries` (at least one) at indexes first,
  // first + 1, ... only if the log's last index is first - 1, all or none,
  // and returns `first`. kAborted when another writer took index `first`
  // meanwhile (the caller applies what it missed and retries; LastIndex()
  // then says where the log ends). What every writer of a shared log uses;
  // the default, for single-writer logs, checks LastIndex() and appends.
  virtual absl::StatusOr<uint64_t> AppendBatchAt(
      uint64_t first, const std::vector<std::string>& entries) {
    if (LastIndex() + 1 != first) {
      return absl::AbortedError(absl::StrCat("log index ", first,
                                             " is taken; the log ends at ",
                                             LastIndex()));
    }
    return AppendBatch(entries);
  }

  // Refresh asks the log's source of truth where it ends (other writers'
  // appends included) and returns that last index; LastIndex() is at least
  // it afterwards. kUnavailable when it cannot be reached.
  virtual absl::StatusOr<uint64_t> Refresh() { return LastIndex(); }

  // What identifies entry `index` where several writers share the log (the
  // etcd batch holding it): a replica records it with what it applied and
  // checks it at its next start, so a log rewritten under a stopped replica
  // is DATA_LOSS, not a silent fork. "" when the log needs none (a single
  // node's own log) or the index is unknown.
  virtual std::string Fingerprint(uint64_t index) const { return ""; }

  // WaitBeyond returns once LastIndex() > `index` or at `deadline`,
  // whichever comes first, with LastIndex(). A single-writer log has no
  // one else to wait for and returns at once.
  virtual uint64_t WaitBeyond(uint64_t index, absl::Time deadline) {
    (void)index;
    (void)deadline;
    return LastIndex();
  }

  // The most entries, and bytes of entries, one append may carry (a shared
  // log's transaction limits); callers split larger groups.
  virtual size_t MaxBatchEntries() const { return SIZE_MAX; }
  virtual size_t MaxBatchBytes() const { return SIZE_MAX; }
};

}  // namespace warden::controlplane::log

#endif  // WARDEN_CONTROLPLANE_LOG_LOG_H_
