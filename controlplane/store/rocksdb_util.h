// Package-internal helpers shared by controlplane/store and controlplane/log,
// the only two users of RocksDB. This is where rocksdb::Status becomes
// absl::Status; nothing outside these two packages sees RocksDB types.
#ifndef WARDEN_CONTROLPLANE_STORE_ROCKSDB_UTIL_H_
#define WARDEN_CONTROLPLANE_STORE_ROCKSDB_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rocksdb/status.h"

namespace warden::controlplane::store {

// ToAbslStatus converts a RocksDB status, prefixing `context` (what was being
// done, with the path), e.g. ToAbslStatus(s, "open /var/lib/warden/state").
// Codes: NotFound→kNotFound, Corruption→kDataLoss, InvalidArgument→
// kInvalidArgument, NotSupported→kUnimplemented, IOError with no space→
// kResourceExhausted, Busy/TimedOut/TryAgain/Incomplete/ShutdownInProgress→
// kUnavailable, Aborted→kAborted, other IOError and the rest→kInternal.
absl::Status ToAbslStatus(const rocksdb::Status& status,
                          absl::string_view context);

// EncodeIndex(5) is the 8-byte big-endian form, so that byte-wise key order
// is numeric order.
std::string EncodeIndex(uint64_t index);

// DecodeIndex reverses EncodeIndex; kDataLoss unless `bytes` has 8 bytes.
absl::StatusOr<uint64_t> DecodeIndex(absl::string_view bytes);

// CheckDirectoryPath returns kFailedPrecondition when `path` exists and is
// not a directory (RocksDB's own error for that is obscure); OK otherwise.
absl::Status CheckDirectoryPath(const std::string& path);

}  // namespace warden::controlplane::store

#endif  // WARDEN_CONTROLPLANE_STORE_ROCKSDB_UTIL_H_
