#include "controlplane/store/rocksdb_util.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace warden::controlplane::store {

absl::Status ToAbslStatus(const rocksdb::Status& status,
                          absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", status.ToString());
  switch (status.code()) {
    case rocksdb::Status::kNotFound:
      return absl::NotFoundError(message);
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(message);
    case rocksdb::Status::kInvalidArgument:
      return absl::InvalidArgumentError(message);
    case rocksdb::Status::kNotSupported:
      return absl::UnimplementedError(message);
    case rocksdb::Status::kIOError:
      if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
      return absl::InternalError(message);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kIncomplete:
    case rocksdb::Status::kShutdownInProgress:
      return absl::UnavailableError(message);
    case rocksdb::Status::kAborted:
      return absl::AbortedError(message);
    default:
      return absl::InternalError(message);
  }
}

std::string EncodeIndex(uint64_t index) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(index & 0xff);
    index >>= 8;
  }
  return out;
}

absl::StatusOr<uint64_t> DecodeIndex(absl::string_view bytes) {
  if (bytes.size() != 8) {
    return absl::DataLossError(
        absl::StrCat("stored index has ", bytes.size(), " bytes, want 8"));
  }
  uint64_t index = 0;
  for (unsigned char c : bytes) index = (index << 8) | c;
  return index;
}

absl::Status CheckDirectoryPath(const std::string& path) {
  std::error_code ec;
  std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (std::filesystem::exists(st) && !std::filesystem::is_directory(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a directory"));
  }
  return absl::OkStatus();
}

}  // namespace warden::controlplane::store
