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

#include "absl/status/statusor.h"

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

  // The index of the last appended entry; 0 for an empty log.
  virtual uint64_t LastIndex() const = 0;
};

}  // namespace warden::controlplane::log

#endif  // WARDEN_CONTROLPLANE_LOG_LOG_H_
