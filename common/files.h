// Small file helpers shared by both planes.
#ifndef WARDEN_COMMON_FILES_H_
#define WARDEN_COMMON_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace warden {

// ReadFile returns the whole file; NotFound naming the path if it cannot be
// read.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// WriteFileDurably replaces `path` with `data`, readable by its owner only
// (0600), so that a crash leaves the old or the new file: a temporary file,
// fsync, rename.
absl::Status WriteFileDurably(const std::string& path, const std::string& data);

}  // namespace warden

#endif  // WARDEN_COMMON_FILES_H_
